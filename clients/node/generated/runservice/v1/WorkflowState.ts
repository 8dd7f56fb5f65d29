// Original file: runservice/v1/run.proto

import type { RunStatus as _runservice_v1_RunStatus, RunStatus__Output as _runservice_v1_RunStatus__Output } from '../../runservice/v1/RunStatus';
import type { StepRecord as _runservice_v1_StepRecord, StepRecord__Output as _runservice_v1_StepRecord__Output } from '../../runservice/v1/StepRecord';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';

/**
 * The run state as of one event: Mastra's watch record `workflowState`.
 */
export interface WorkflowState {
  /**
   * Run status after the event.
   */
  'status'?: (_runservice_v1_RunStatus);
  /**
   * Every step record after the event.
   */
  'steps'?: (_runservice_v1_StepRecord)[];
  /**
   * The result, once the run succeeded.
   */
  'result'?: (_google_protobuf_Value | null);
  /**
   * The error, once the run failed.
   */
  'error'?: (_runservice_v1_RunError | null);
}

/**
 * The run state as of one event: Mastra's watch record `workflowState`.
 */
export interface WorkflowState__Output {
  /**
   * Run status after the event.
   */
  'status': (_runservice_v1_RunStatus__Output);
  /**
   * Every step record after the event.
   */
  'steps': (_runservice_v1_StepRecord__Output)[];
  /**
   * The result, once the run succeeded.
   */
  'result': (_google_protobuf_Value__Output | null);
  /**
   * The error, once the run failed.
   */
  'error': (_runservice_v1_RunError__Output | null);
}
