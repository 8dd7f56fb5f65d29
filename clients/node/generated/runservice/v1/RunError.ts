// Original file: runservice/v1/run.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';

/**
 * A structured error. Never contains a stack trace.
 */
export interface RunError {
  /**
   * Error class name, for example "ValueError" or "StepInputValidationError".
   */
  'name'?: (string);
  /**
   * Human-readable message.
   */
  'message'?: (string);
  /**
   * Optional structured details (for example validation issues).
   */
  'details'?: (_google_protobuf_Value | null);
}

/**
 * A structured error. Never contains a stack trace.
 */
export interface RunError__Output {
  /**
   * Error class name, for example "ValueError" or "StepInputValidationError".
   */
  'name': (string);
  /**
   * Human-readable message.
   */
  'message': (string);
  /**
   * Optional structured details (for example validation issues).
   */
  'details': (_google_protobuf_Value__Output | null);
}
