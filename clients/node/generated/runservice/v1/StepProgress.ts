// Original file: runservice/v1/run.proto

import type { StepStatus as _runservice_v1_StepStatus, StepStatus__Output as _runservice_v1_StepStatus__Output } from '../../runservice/v1/StepStatus';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';

/**
 * Progress of a foreach step, carried by RUN_EVENT_TYPE_STEP_PROGRESS.
 */
export interface StepProgress {
  /**
   * Items finished so far (success or failure).
   */
  'completedCount'?: (number);
  /**
   * Number of items.
   */
  'totalCount'?: (number);
  /**
   * The item this event is about.
   */
  'currentIndex'?: (number);
  /**
   * Status of that item.
   */
  'iterationStatus'?: (_runservice_v1_StepStatus);
  /**
   * Output of that item, when it succeeded.
   */
  'iterationOutput'?: (_google_protobuf_Value | null);
}

/**
 * Progress of a foreach step, carried by RUN_EVENT_TYPE_STEP_PROGRESS.
 */
export interface StepProgress__Output {
  /**
   * Items finished so far (success or failure).
   */
  'completedCount': (number);
  /**
   * Number of items.
   */
  'totalCount': (number);
  /**
   * The item this event is about.
   */
  'currentIndex': (number);
  /**
   * Status of that item.
   */
  'iterationStatus': (_runservice_v1_StepStatus__Output);
  /**
   * Output of that item, when it succeeded.
   */
  'iterationOutput': (_google_protobuf_Value__Output | null);
}
