// Original file: runservice/v1/run.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { RunEventType as _runservice_v1_RunEventType, RunEventType__Output as _runservice_v1_RunEventType__Output } from '../../runservice/v1/RunEventType';
import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from '../../runservice/v1/StepPath';
import type { StepRecord as _runservice_v1_StepRecord, StepRecord__Output as _runservice_v1_StepRecord__Output } from '../../runservice/v1/StepRecord';
import type { RunStatus as _runservice_v1_RunStatus, RunStatus__Output as _runservice_v1_RunStatus__Output } from '../../runservice/v1/RunStatus';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';
import type { StepProgress as _runservice_v1_StepProgress, StepProgress__Output as _runservice_v1_StepProgress__Output } from '../../runservice/v1/StepProgress';
import type { ExecutionCause as _runservice_v1_ExecutionCause, ExecutionCause__Output as _runservice_v1_ExecutionCause__Output } from '../../runservice/v1/ExecutionCause';
import type { Long } from '@grpc/proto-loader';

/**
 * One entry of a run's append-only event log.
 */
export interface RunEvent {
  /**
   * 1-based, gap-free per run, assigned when the event is durably written.
   */
  'sequence'?: (number | string | Long);
  /**
   * The run this event belongs to.
   */
  'runId'?: (string);
  /**
   * When the event was written.
   */
  'time'?: (_google_protobuf_Timestamp | null);
  /**
   * What happened.
   */
  'type'?: (_runservice_v1_RunEventType);
  /**
   * The step the event is about; empty for workflow-level events.
   */
  'stepPath'?: (_runservice_v1_StepPath | null);
  /**
   * The step's record after the change; set for step events.
   */
  'step'?: (_runservice_v1_StepRecord | null);
  /**
   * The run's status after the change.
   */
  'runStatus'?: (_runservice_v1_RunStatus);
  /**
   * Event data: the chunk written for STEP_OUTPUT, the result for a successful
   * WORKFLOW_FINISH, the workflow id for WORKFLOW_START.
   */
  'data'?: (_google_protobuf_Value | null);
  /**
   * The run's error, for a failed WORKFLOW_FINISH.
   */
  'error'?: (_runservice_v1_RunError | null);
  /**
   * Foreach progress, for STEP_PROGRESS.
   */
  'progress'?: (_runservice_v1_StepProgress | null);
  /**
   * For WORKFLOW_START: what began this execution of the run (a resume, a deadline, ...).
   */
  'cause'?: (_runservice_v1_ExecutionCause);
}

/**
 * One entry of a run's append-only event log.
 */
export interface RunEvent__Output {
  /**
   * 1-based, gap-free per run, assigned when the event is durably written.
   */
  'sequence': (string);
  /**
   * The run this event belongs to.
   */
  'runId': (string);
  /**
   * When the event was written.
   */
  'time': (_google_protobuf_Timestamp__Output | null);
  /**
   * What happened.
   */
  'type': (_runservice_v1_RunEventType__Output);
  /**
   * The step the event is about; empty for workflow-level events.
   */
  'stepPath': (_runservice_v1_StepPath__Output | null);
  /**
   * The step's record after the change; set for step events.
   */
  'step': (_runservice_v1_StepRecord__Output | null);
  /**
   * The run's status after the change.
   */
  'runStatus': (_runservice_v1_RunStatus__Output);
  /**
   * Event data: the chunk written for STEP_OUTPUT, the result for a successful
   * WORKFLOW_FINISH, the workflow id for WORKFLOW_START.
   */
  'data': (_google_protobuf_Value__Output | null);
  /**
   * The run's error, for a failed WORKFLOW_FINISH.
   */
  'error': (_runservice_v1_RunError__Output | null);
  /**
   * Foreach progress, for STEP_PROGRESS.
   */
  'progress': (_runservice_v1_StepProgress__Output | null);
  /**
   * For WORKFLOW_START: what began this execution of the run (a resume, a deadline, ...).
   */
  'cause': (_runservice_v1_ExecutionCause__Output);
}
