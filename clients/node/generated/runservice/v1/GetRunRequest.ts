// Original file: runservice/v1/run_service.proto

import type { RunView as _runservice_v1_RunView, RunView__Output as _runservice_v1_RunView__Output } from '../../runservice/v1/RunView';

/**
 * Request of GetRun.
 */
export interface GetRunRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run.
   */
  'runId'?: (string);
  /**
   * Include the run-wide state in Run.state.
   */
  'includeState'?: (boolean);
  /**
   * How much of the run to return; unspecified means RUN_VIEW_FULL.
   */
  'view'?: (_runservice_v1_RunView);
}

/**
 * Request of GetRun.
 */
export interface GetRunRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run.
   */
  'runId': (string);
  /**
   * Include the run-wide state in Run.state.
   */
  'includeState': (boolean);
  /**
   * How much of the run to return; unspecified means RUN_VIEW_FULL.
   */
  'view': (_runservice_v1_RunView__Output);
}
