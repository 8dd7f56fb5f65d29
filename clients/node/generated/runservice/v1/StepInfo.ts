// Original file: runservice/v1/run.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

/**
 * A step's identity and schemas.
 */
export interface StepInfo {
  /**
   * The step id, or a dotted path for steps inside nested workflows.
   */
  'id'?: (string);
  /**
   * The step's description.
   */
  'description'?: (string);
  /**
   * JSON Schema of the step's input.
   */
  'inputSchema'?: (_google_protobuf_Value | null);
  /**
   * JSON Schema of the step's output.
   */
  'outputSchema'?: (_google_protobuf_Value | null);
  /**
   * JSON Schema of the resume data; unset if the step declares none.
   */
  'resumeSchema'?: (_google_protobuf_Value | null);
  /**
   * JSON Schema of the suspend payload; unset if the step declares none.
   */
  'suspendSchema'?: (_google_protobuf_Value | null);
  /**
   * True when the step declares a suspend or resume schema.
   */
  'canSuspend'?: (boolean);
  /**
   * True when the step is a nested workflow.
   */
  'isWorkflow'?: (boolean);
  /**
   * Number of retries after a failed attempt.
   */
  'retries'?: (number);
  /**
   * How long one attempt of the step may take; unset when unlimited. Past it the
   * attempt is cancelled and fails with a RunError named "StepTimeoutError", which
   * counts as an attempt for `retries`. For a nested workflow: its own timeout.
   */
  'timeout'?: (_google_protobuf_Duration | null);
}

/**
 * A step's identity and schemas.
 */
export interface StepInfo__Output {
  /**
   * The step id, or a dotted path for steps inside nested workflows.
   */
  'id': (string);
  /**
   * The step's description.
   */
  'description': (string);
  /**
   * JSON Schema of the step's input.
   */
  'inputSchema': (_google_protobuf_Value__Output | null);
  /**
   * JSON Schema of the step's output.
   */
  'outputSchema': (_google_protobuf_Value__Output | null);
  /**
   * JSON Schema of the resume data; unset if the step declares none.
   */
  'resumeSchema': (_google_protobuf_Value__Output | null);
  /**
   * JSON Schema of the suspend payload; unset if the step declares none.
   */
  'suspendSchema': (_google_protobuf_Value__Output | null);
  /**
   * True when the step declares a suspend or resume schema.
   */
  'canSuspend': (boolean);
  /**
   * True when the step is a nested workflow.
   */
  'isWorkflow': (boolean);
  /**
   * Number of retries after a failed attempt.
   */
  'retries': (number);
  /**
   * How long one attempt of the step may take; unset when unlimited. Past it the
   * attempt is cancelled and fails with a RunError named "StepTimeoutError", which
   * counts as an attempt for `retries`. For a nested workflow: its own timeout.
   */
  'timeout': (_google_protobuf_Duration__Output | null);
}
