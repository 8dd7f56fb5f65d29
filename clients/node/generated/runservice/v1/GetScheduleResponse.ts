// Original file: runservice/v1/schedule_service.proto

import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from '../../runservice/v1/Schedule';

/**
 * Response of GetSchedule.
 */
export interface GetScheduleResponse {
  /**
   * The schedule.
   */
  'schedule'?: (_runservice_v1_Schedule | null);
}

/**
 * Response of GetSchedule.
 */
export interface GetScheduleResponse__Output {
  /**
   * The schedule.
   */
  'schedule': (_runservice_v1_Schedule__Output | null);
}
