// Original file: runservice/v1/run_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { TracingOptions as _runservice_v1_TracingOptions, TracingOptions__Output as _runservice_v1_TracingOptions__Output } from '../../runservice/v1/TracingOptions';

/**
 * Request of TimeTravel.
 */
export interface TimeTravelRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run: success, failed, canceled or suspended.
   */
  'runId'?: (string);
  /**
   * Required. The step to re-execute from: a path of ids (outermost first, into nested
   * workflows) or one dotted id such as "outer.inner". It must have run before.
   */
  'step'?: (string)[];
  /**
   * The step's new input, validated against its input schema (a list for a foreach
   * step). Unset: the input it ran with last time.
   */
  'inputData'?: (_google_protobuf_Value | null);
  /**
   * Replaces the run state (validated against the state schema). Unset: the run's
   * state as it is now (the state is not rewound).
   */
  'initialState'?: (_google_protobuf_Value | null);
  /**
   * Request context entries for the re-execution; stored keys the caller does not set are kept.
   */
  'requestContext'?: (_google_protobuf_Value | null);
  /**
   * True: return only when the run is terminal or suspended again. False: return at once.
   */
  'wait'?: (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * instead of a second time travel; the same key with another step, input_data,
   * initial_state or request_context is ALREADY_EXISTS, reason REQUEST_ID_REUSED, with
   * that field in the ErrorInfo metadata "field" (it is not a retry of that time travel).
   */
  'requestId'?: (string);
  /**
   * Optional tracing of the re-execution (its span, trace id and attributes).
   */
  'tracingOptions'?: (_runservice_v1_TracingOptions | null);
  /**
   * Optional. Runs the step as resumed with this data (Mastra's timeTravel `resumeData`):
   * its body gets it as `resume_data`, with the payload it suspended with as
   * `suspend_data` when the run left it suspended (else none); for a foreach step, every
   * item's body. Validated against the step's resume schema as a Resume's is (unchecked
   * when it has none). A nested workflow is no step with a body: INVALID_ARGUMENT with a
   * field violation on `resume_data` (travel to the step inside it). Unset or null: the
   * step runs as it first did. Recorded in the TIME_TRAVEL event's data and on the step's
   * record (resume_payload, resumed_at).
   */
  'resumeData'?: (_google_protobuf_Value | null);
}

/**
 * Request of TimeTravel.
 */
export interface TimeTravelRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run: success, failed, canceled or suspended.
   */
  'runId': (string);
  /**
   * Required. The step to re-execute from: a path of ids (outermost first, into nested
   * workflows) or one dotted id such as "outer.inner". It must have run before.
   */
  'step': (string)[];
  /**
   * The step's new input, validated against its input schema (a list for a foreach
   * step). Unset: the input it ran with last time.
   */
  'inputData': (_google_protobuf_Value__Output | null);
  /**
   * Replaces the run state (validated against the state schema). Unset: the run's
   * state as it is now (the state is not rewound).
   */
  'initialState': (_google_protobuf_Value__Output | null);
  /**
   * Request context entries for the re-execution; stored keys the caller does not set are kept.
   */
  'requestContext': (_google_protobuf_Value__Output | null);
  /**
   * True: return only when the run is terminal or suspended again. False: return at once.
   */
  'wait': (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * instead of a second time travel; the same key with another step, input_data,
   * initial_state or request_context is ALREADY_EXISTS, reason REQUEST_ID_REUSED, with
   * that field in the ErrorInfo metadata "field" (it is not a retry of that time travel).
   */
  'requestId': (string);
  /**
   * Optional tracing of the re-execution (its span, trace id and attributes).
   */
  'tracingOptions': (_runservice_v1_TracingOptions__Output | null);
  /**
   * Optional. Runs the step as resumed with this data (Mastra's timeTravel `resumeData`):
   * its body gets it as `resume_data`, with the payload it suspended with as
   * `suspend_data` when the run left it suspended (else none); for a foreach step, every
   * item's body. Validated against the step's resume schema as a Resume's is (unchecked
   * when it has none). A nested workflow is no step with a body: INVALID_ARGUMENT with a
   * field violation on `resume_data` (travel to the step inside it). Unset or null: the
   * step runs as it first did. Recorded in the TIME_TRAVEL event's data and on the step's
   * record (resume_payload, resumed_at).
   */
  'resumeData': (_google_protobuf_Value__Output | null);
}
