// Original file: runservice/v1/run.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';

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
  /**
   * The error this one was raised from (Python's `raise ... from`, Mastra's
   * `cause`), with its own cause below it: four levels at most, each with its
   * name and message (cut to 1,024 characters) and no details. Unset when the
   * error has no cause.
   */
  'cause'?: (_runservice_v1_RunError | null);
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
  /**
   * The error this one was raised from (Python's `raise ... from`, Mastra's
   * `cause`), with its own cause below it: four levels at most, each with its
   * name and message (cut to 1,024 characters) and no details. Unset when the
   * error has no cause.
   */
  'cause': (_runservice_v1_RunError__Output | null);
}
