// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of Cancel.
 */
export interface CancelResponse {
  /**
   * The run after the cancel: canceled, or unchanged if it had already finished.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of Cancel.
 */
export interface CancelResponse__Output {
  /**
   * The run after the cancel: canceled, or unchanged if it had already finished.
   */
  'run': (_runservice_v1_Run__Output | null);
}
