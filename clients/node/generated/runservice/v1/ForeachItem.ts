// Original file: runservice/v1/run.proto

import type { StepStatus as _runservice_v1_StepStatus, StepStatus__Output as _runservice_v1_StepStatus__Output } from '../../runservice/v1/StepStatus';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';

/**
 * The state of one item of a foreach step.
 */
export interface ForeachItem {
  /**
   * Position of the item in the input list.
   */
  'index'?: (number);
  /**
   * Status of this item's execution.
   */
  'status'?: (_runservice_v1_StepStatus);
  /**
   * The item's output; set when status is STEP_STATUS_SUCCESS.
   */
  'output'?: (_google_protobuf_Value | null);
  /**
   * The item's suspend payload; set when status is STEP_STATUS_SUSPENDED.
   */
  'suspendPayload'?: (_google_protobuf_Value | null);
  /**
   * The item's error; set when status is STEP_STATUS_FAILED.
   */
  'error'?: (_runservice_v1_RunError | null);
}

/**
 * The state of one item of a foreach step.
 */
export interface ForeachItem__Output {
  /**
   * Position of the item in the input list.
   */
  'index': (number);
  /**
   * Status of this item's execution.
   */
  'status': (_runservice_v1_StepStatus__Output);
  /**
   * The item's output; set when status is STEP_STATUS_SUCCESS.
   */
  'output': (_google_protobuf_Value__Output | null);
  /**
   * The item's suspend payload; set when status is STEP_STATUS_SUSPENDED.
   */
  'suspendPayload': (_google_protobuf_Value__Output | null);
  /**
   * The item's error; set when status is STEP_STATUS_FAILED.
   */
  'error': (_runservice_v1_RunError__Output | null);
}
