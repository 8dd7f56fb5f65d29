// Original file: runservice/v1/schedule_service.proto

import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from '../../runservice/v1/Schedule';

/**
 * Response of ResumeSchedule.
 */
export interface ResumeScheduleResponse {
  /**
   * The schedule, not paused, with its next tick.
   */
  'schedule'?: (_runservice_v1_Schedule | null);
}

/**
 * Response of ResumeSchedule.
 */
export interface ResumeScheduleResponse__Output {
  /**
   * The schedule, not paused, with its next tick.
   */
  'schedule': (_runservice_v1_Schedule__Output | null);
}
