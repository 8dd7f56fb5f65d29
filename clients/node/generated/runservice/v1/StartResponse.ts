// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of Start.
 */
export interface StartResponse {
  /**
   * The run: terminal or suspended with `wait`, usually running without.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of Start.
 */
export interface StartResponse__Output {
  /**
   * The run: terminal or suspended with `wait`, usually running without.
   */
  'run': (_runservice_v1_Run__Output | null);
}
