// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of GetRun.
 */
export interface GetRunResponse {
  /**
   * The run.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of GetRun.
 */
export interface GetRunResponse__Output {
  /**
   * The run.
   */
  'run': (_runservice_v1_Run__Output | null);
}
