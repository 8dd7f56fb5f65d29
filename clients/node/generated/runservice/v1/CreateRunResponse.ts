// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of CreateRun.
 */
export interface CreateRunResponse {
  /**
   * The run (status RUN_STATUS_PENDING unless it already existed).
   */
  'run'?: (_runservice_v1_Run | null);
  /**
   * False when a run with this id already existed and was returned unchanged.
   */
  'created'?: (boolean);
}

/**
 * Response of CreateRun.
 */
export interface CreateRunResponse__Output {
  /**
   * The run (status RUN_STATUS_PENDING unless it already existed).
   */
  'run': (_runservice_v1_Run__Output | null);
  /**
   * False when a run with this id already existed and was returned unchanged.
   */
  'created': (boolean);
}
