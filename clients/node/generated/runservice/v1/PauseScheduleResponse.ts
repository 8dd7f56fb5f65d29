// Original file: runservice/v1/schedule_service.proto

import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from '../../runservice/v1/Schedule';

/**
 * Response of PauseSchedule.
 */
export interface PauseScheduleResponse {
  /**
   * The schedule, paused.
   */
  'schedule'?: (_runservice_v1_Schedule | null);
}

/**
 * Response of PauseSchedule.
 */
export interface PauseScheduleResponse__Output {
  /**
   * The schedule, paused.
   */
  'schedule': (_runservice_v1_Schedule__Output | null);
}
