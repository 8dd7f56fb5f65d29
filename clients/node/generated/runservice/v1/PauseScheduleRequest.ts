// Original file: runservice/v1/schedule_service.proto


/**
 * Request of PauseSchedule.
 */
export interface PauseScheduleRequest {
  /**
   * Required. The schedule.
   */
  'scheduleId'?: (string);
}

/**
 * Request of PauseSchedule.
 */
export interface PauseScheduleRequest__Output {
  /**
   * Required. The schedule.
   */
  'scheduleId': (string);
}
