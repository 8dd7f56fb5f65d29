// Original file: runservice/v1/run_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';

/**
 * How an execution (a Start or a Resume) is traced: Mastra's `tracingOptions`. A W3C
 * `traceparent` request header is honoured too; these fields win over it. Stream takes
 * them in its embedded StartRequest, ResumeRequest or TimeTravelRequest.
 */
export interface TracingOptions {
  /**
   * Trace id for this execution: 1 to 32 hexadecimal characters, left-padded with zeros
   * to a W3C trace id. Empty: the `traceparent` header's trace, else the run's own (a new
   * random id at Start). At Start it becomes the run's `trace_id`.
   */
  'traceId'?: (string);
  /**
   * Parent span id: 1 to 16 hexadecimal characters, left-padded with zeros. The
   * execution's span becomes a child of this span in the trace above.
   */
  'parentSpanId'?: (string);
  /**
   * Tags for the execution's span (attribute `runservice.tags`).
   */
  'tags'?: (string)[];
  /**
   * Metadata for the execution's span: a JSON object whose entries become attributes
   * `runservice.metadata.<key>` (strings, numbers and booleans as they are, others as JSON).
   */
  'metadata'?: (_google_protobuf_Value | null);
  /**
   * Request-context keys whose values become attributes of the execution's span
   * (`runservice.request_context.<key>`); dot notation reaches nested values ("user.id").
   */
  'requestContextKeys'?: (string)[];
}

/**
 * How an execution (a Start or a Resume) is traced: Mastra's `tracingOptions`. A W3C
 * `traceparent` request header is honoured too; these fields win over it. Stream takes
 * them in its embedded StartRequest, ResumeRequest or TimeTravelRequest.
 */
export interface TracingOptions__Output {
  /**
   * Trace id for this execution: 1 to 32 hexadecimal characters, left-padded with zeros
   * to a W3C trace id. Empty: the `traceparent` header's trace, else the run's own (a new
   * random id at Start). At Start it becomes the run's `trace_id`.
   */
  'traceId': (string);
  /**
   * Parent span id: 1 to 16 hexadecimal characters, left-padded with zeros. The
   * execution's span becomes a child of this span in the trace above.
   */
  'parentSpanId': (string);
  /**
   * Tags for the execution's span (attribute `runservice.tags`).
   */
  'tags': (string)[];
  /**
   * Metadata for the execution's span: a JSON object whose entries become attributes
   * `runservice.metadata.<key>` (strings, numbers and booleans as they are, others as JSON).
   */
  'metadata': (_google_protobuf_Value__Output | null);
  /**
   * Request-context keys whose values become attributes of the execution's span
   * (`runservice.request_context.<key>`); dot notation reaches nested values ("user.id").
   */
  'requestContextKeys': (string)[];
}
