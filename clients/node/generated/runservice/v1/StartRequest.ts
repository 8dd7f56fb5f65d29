// Original file: runservice/v1/run_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { TracingOptions as _runservice_v1_TracingOptions, TracingOptions__Output as _runservice_v1_TracingOptions__Output } from '../../runservice/v1/TracingOptions';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

/**
 * Request of Start.
 */
export interface StartRequest {
  /**
   * Required. The workflow to run.
   */
  'workflowId'?: (string);
  /**
   * Optional. The run to start; created when it does not exist, generated when empty.
   */
  'runId'?: (string);
  /**
   * The run input, validated against the workflow's input schema.
   */
  'inputData'?: (_google_protobuf_Value | null);
  /**
   * The initial run state, validated against the workflow's state schema.
   */
  'initialState'?: (_google_protobuf_Value | null);
  /**
   * Request context (a JSON object) shared by every step of the run.
   */
  'requestContext'?: (_google_protobuf_Value | null);
  /**
   * True: return only when the run is terminal or suspended. False: return at once.
   */
  'wait'?: (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * instead of ALREADY_EXISTS; the same key with another input_data, initial_state,
   * request_context or timeout is ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that
   * field in the ErrorInfo metadata "field" (it is not a retry of that Start). A retry
   * may change wait, include_state and tracing_options.
   */
  'requestId'?: (string);
  /**
   * Optional owner of the run, used when Start creates it.
   */
  'resourceId'?: (string);
  /**
   * Optional tracing of this execution (the run's span, its trace id and attributes).
   */
  'tracingOptions'?: (_runservice_v1_TracingOptions | null);
  /**
   * Optional. How long the run may take, wall clock from this start, time suspended or
   * sleeping included. The run's deadline (Run.deadline) is the start time plus the
   * shorter of this and the workflow's own timeout: a caller can shorten the author's
   * limit, never extend it. Past it the run ends RUN_STATUS_FAILED with a RunError named
   * "RunTimeoutError" (details.reason "RUN_DEADLINE_EXCEEDED"). Must be positive.
   */
  'timeout'?: (_google_protobuf_Duration | null);
  /**
   * True: the reply's Run carries `state` (Mastra's outputOptions.includeState).
   */
  'includeState'?: (boolean);
}

/**
 * Request of Start.
 */
export interface StartRequest__Output {
  /**
   * Required. The workflow to run.
   */
  'workflowId': (string);
  /**
   * Optional. The run to start; created when it does not exist, generated when empty.
   */
  'runId': (string);
  /**
   * The run input, validated against the workflow's input schema.
   */
  'inputData': (_google_protobuf_Value__Output | null);
  /**
   * The initial run state, validated against the workflow's state schema.
   */
  'initialState': (_google_protobuf_Value__Output | null);
  /**
   * Request context (a JSON object) shared by every step of the run.
   */
  'requestContext': (_google_protobuf_Value__Output | null);
  /**
   * True: return only when the run is terminal or suspended. False: return at once.
   */
  'wait': (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * instead of ALREADY_EXISTS; the same key with another input_data, initial_state,
   * request_context or timeout is ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that
   * field in the ErrorInfo metadata "field" (it is not a retry of that Start). A retry
   * may change wait, include_state and tracing_options.
   */
  'requestId': (string);
  /**
   * Optional owner of the run, used when Start creates it.
   */
  'resourceId': (string);
  /**
   * Optional tracing of this execution (the run's span, its trace id and attributes).
   */
  'tracingOptions': (_runservice_v1_TracingOptions__Output | null);
  /**
   * Optional. How long the run may take, wall clock from this start, time suspended or
   * sleeping included. The run's deadline (Run.deadline) is the start time plus the
   * shorter of this and the workflow's own timeout: a caller can shorten the author's
   * limit, never extend it. Past it the run ends RUN_STATUS_FAILED with a RunError named
   * "RunTimeoutError" (details.reason "RUN_DEADLINE_EXCEEDED"). Must be positive.
   */
  'timeout': (_google_protobuf_Duration__Output | null);
  /**
   * True: the reply's Run carries `state` (Mastra's outputOptions.includeState).
   */
  'includeState': (boolean);
}
