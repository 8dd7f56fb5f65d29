// Original file: runservice/v1/run_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { TracingOptions as _runservice_v1_TracingOptions, TracingOptions__Output as _runservice_v1_TracingOptions__Output } from '../../runservice/v1/TracingOptions';

/**
 * Request of Resume.
 */
export interface ResumeRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run to resume.
   */
  'runId'?: (string);
  /**
   * The resume data, validated against the step's resume schema.
   */
  'resumeData'?: (_google_protobuf_Value | null);
  /**
   * The step to resume: a path of ids (outermost first) or one dotted id such as
   * "outer.inner". Optional when exactly one step is suspended. Without an item, the
   * suspended items of a foreach are all resumed with the same data (one suspended step
   * in each item, for a foreach of workflows).
   */
  'step'?: (string)[];
  /**
   * Resume the step (and foreach item) registered under this resume label.
   */
  'label'?: (string);
  /**
   * Resume only this item of a suspended foreach step.
   */
  'forEachIndex'?: (number);
  /**
   * Request context entries for the resumed part; stored keys the caller does not set are kept.
   */
  'requestContext'?: (_google_protobuf_Value | null);
  /**
   * True: return only when the run is terminal or suspended again. False: return at once.
   */
  'wait'?: (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome; the
   * same key with another resume_data, step, label, for_each_index or request_context is
   * ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that field in the ErrorInfo metadata
   * "field" (it is not a retry of that Resume). A retry may change wait, include_state
   * and tracing_options.
   */
  'requestId'?: (string);
  /**
   * Optional tracing of the resumed execution (its span, trace id and attributes).
   */
  'tracingOptions'?: (_runservice_v1_TracingOptions | null);
  /**
   * True: the reply's Run carries `state` (Mastra's outputOptions.includeState).
   */
  'includeState'?: (boolean);
  '_forEachIndex'?: "forEachIndex";
}

/**
 * Request of Resume.
 */
export interface ResumeRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run to resume.
   */
  'runId': (string);
  /**
   * The resume data, validated against the step's resume schema.
   */
  'resumeData': (_google_protobuf_Value__Output | null);
  /**
   * The step to resume: a path of ids (outermost first) or one dotted id such as
   * "outer.inner". Optional when exactly one step is suspended. Without an item, the
   * suspended items of a foreach are all resumed with the same data (one suspended step
   * in each item, for a foreach of workflows).
   */
  'step': (string)[];
  /**
   * Resume the step (and foreach item) registered under this resume label.
   */
  'label': (string);
  /**
   * Resume only this item of a suspended foreach step.
   */
  'forEachIndex'?: (number);
  /**
   * Request context entries for the resumed part; stored keys the caller does not set are kept.
   */
  'requestContext': (_google_protobuf_Value__Output | null);
  /**
   * True: return only when the run is terminal or suspended again. False: return at once.
   */
  'wait': (boolean);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome; the
   * same key with another resume_data, step, label, for_each_index or request_context is
   * ALREADY_EXISTS, reason REQUEST_ID_REUSED, with that field in the ErrorInfo metadata
   * "field" (it is not a retry of that Resume). A retry may change wait, include_state
   * and tracing_options.
   */
  'requestId': (string);
  /**
   * Optional tracing of the resumed execution (its span, trace id and attributes).
   */
  'tracingOptions': (_runservice_v1_TracingOptions__Output | null);
  /**
   * True: the reply's Run carries `state` (Mastra's outputOptions.includeState).
   */
  'includeState': (boolean);
  '_forEachIndex'?: "forEachIndex";
}
