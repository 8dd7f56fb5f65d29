// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of ForkRun.
 */
export interface ForkRunResponse {
  /**
   * The new run (see ForkRunRequest.wait).
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of ForkRun.
 */
export interface ForkRunResponse__Output {
  /**
   * The new run (see ForkRunRequest.wait).
   */
  'run': (_runservice_v1_Run__Output | null);
}
