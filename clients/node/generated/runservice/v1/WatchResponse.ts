// Original file: runservice/v1/run_service.proto

import type { RunEvent as _runservice_v1_RunEvent, RunEvent__Output as _runservice_v1_RunEvent__Output } from '../../runservice/v1/RunEvent';
import type { WorkflowState as _runservice_v1_WorkflowState, WorkflowState__Output as _runservice_v1_WorkflowState__Output } from '../../runservice/v1/WorkflowState';
import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';
import type { Long } from '@grpc/proto-loader';

/**
 * One message of a Watch.
 */
export interface WatchResponse {
  /**
   * Events, contiguous and in sequence order. Empty in a heartbeat.
   */
  'events'?: (_runservice_v1_RunEvent)[];
  /**
   * With include_workflow_state: the state as of each event, parallel to `events`.
   */
  'workflowStates'?: (_runservice_v1_WorkflowState)[];
  /**
   * The highest sequence recorded for the run when this message was sent.
   */
  'watermarkSequence'?: (number | string | Long);
  /**
   * True on the last message, after the run's terminal event.
   */
  'endOfStream'?: (boolean);
  /**
   * The current run; set on the first message when include_run was asked.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * One message of a Watch.
 */
export interface WatchResponse__Output {
  /**
   * Events, contiguous and in sequence order. Empty in a heartbeat.
   */
  'events': (_runservice_v1_RunEvent__Output)[];
  /**
   * With include_workflow_state: the state as of each event, parallel to `events`.
   */
  'workflowStates': (_runservice_v1_WorkflowState__Output)[];
  /**
   * The highest sequence recorded for the run when this message was sent.
   */
  'watermarkSequence': (string);
  /**
   * True on the last message, after the run's terminal event.
   */
  'endOfStream': (boolean);
  /**
   * The current run; set on the first message when include_run was asked.
   */
  'run': (_runservice_v1_Run__Output | null);
}
