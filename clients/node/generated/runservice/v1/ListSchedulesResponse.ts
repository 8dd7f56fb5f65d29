// Original file: runservice/v1/schedule_service.proto

import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from '../../runservice/v1/Schedule';

/**
 * Response of ListSchedules.
 */
export interface ListSchedulesResponse {
  /**
   * The schedules, sorted by id.
   */
  'schedules'?: (_runservice_v1_Schedule)[];
}

/**
 * Response of ListSchedules.
 */
export interface ListSchedulesResponse__Output {
  /**
   * The schedules, sorted by id.
   */
  'schedules': (_runservice_v1_Schedule__Output)[];
}
