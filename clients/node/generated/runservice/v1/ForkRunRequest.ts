// Original file: runservice/v1/run_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { TracingOptions as _runservice_v1_TracingOptions, TracingOptions__Output as _runservice_v1_TracingOptions__Output } from '../../runservice/v1/TracingOptions';

/**
 * Request of ForkRun.
 */
export interface ForkRunRequest {
  /**
   * Optional. When set, must be the original run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The original run: success, failed, canceled or suspended. Not changed.
   */
  'runId'?: (string);
  /**
   * Optional. The new run's id (1-128 characters of [A-Za-z0-9._:-]). Empty: derived
   * from request_id when set (so a retry finds the same fork), else generated.
   */
  'newRunId'?: (string);
  /**
   * Required. The step the fork re-executes from (as TimeTravelRequest.step).
   */
  'step'?: (string)[];
  /**
   * The step's new input (as TimeTravelRequest.input_data).
   */
  'inputData'?: (_google_protobuf_Value | null);
  /**
   * The fork's run state. Unset: the original run's state.
   */
  'initialState'?: (_google_protobuf_Value | null);
  /**
   * Request context entries, merged into the original run's.
   */
  'requestContext'?: (_google_protobuf_Value | null);
  /**
   * True: return only when the fork is terminal or suspended. False: return at once.
   */
  'wait'?: (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first fork; the
   * same key with another run_id, step, input_data, initial_state or request_context is
   * ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that field in the ErrorInfo metadata
   * "field" (it is not a retry of that fork).
   */
  'requestId'?: (string);
  /**
   * Optional tracing of the fork's execution; its trace_id becomes the fork's trace id.
   */
  'tracingOptions'?: (_runservice_v1_TracingOptions | null);
  /**
   * Optional. The step runs as resumed with this data (as TimeTravelRequest.resume_data).
   */
  'resumeData'?: (_google_protobuf_Value | null);
}

/**
 * Request of ForkRun.
 */
export interface ForkRunRequest__Output {
  /**
   * Optional. When set, must be the original run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The original run: success, failed, canceled or suspended. Not changed.
   */
  'runId': (string);
  /**
   * Optional. The new run's id (1-128 characters of [A-Za-z0-9._:-]). Empty: derived
   * from request_id when set (so a retry finds the same fork), else generated.
   */
  'newRunId': (string);
  /**
   * Required. The step the fork re-executes from (as TimeTravelRequest.step).
   */
  'step': (string)[];
  /**
   * The step's new input (as TimeTravelRequest.input_data).
   */
  'inputData': (_google_protobuf_Value__Output | null);
  /**
   * The fork's run state. Unset: the original run's state.
   */
  'initialState': (_google_protobuf_Value__Output | null);
  /**
   * Request context entries, merged into the original run's.
   */
  'requestContext': (_google_protobuf_Value__Output | null);
  /**
   * True: return only when the fork is terminal or suspended. False: return at once.
   */
  'wait': (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first fork; the
   * same key with another run_id, step, input_data, initial_state or request_context is
   * ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that field in the ErrorInfo metadata
   * "field" (it is not a retry of that fork).
   */
  'requestId': (string);
  /**
   * Optional tracing of the fork's execution; its trace_id becomes the fork's trace id.
   */
  'tracingOptions': (_runservice_v1_TracingOptions__Output | null);
  /**
   * Optional. The step runs as resumed with this data (as TimeTravelRequest.resume_data).
   */
  'resumeData': (_google_protobuf_Value__Output | null);
}
