// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of TimeTravel.
 */
export interface TimeTravelResponse {
  /**
   * The run after the time travel (see TimeTravelRequest.wait).
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of TimeTravel.
 */
export interface TimeTravelResponse__Output {
  /**
   * The run after the time travel (see TimeTravelRequest.wait).
   */
  'run': (_runservice_v1_Run__Output | null);
}
