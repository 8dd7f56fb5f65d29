// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of Restart.
 */
export interface RestartResponse {
  /**
   * The run after the restart.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of Restart.
 */
export interface RestartResponse__Output {
  /**
   * The run after the restart.
   */
  'run': (_runservice_v1_Run__Output | null);
}
