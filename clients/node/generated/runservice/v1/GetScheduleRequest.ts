// Original file: runservice/v1/schedule_service.proto


/**
 * Request of GetSchedule.
 */
export interface GetScheduleRequest {
  /**
   * Required. The schedule.
   */
  'scheduleId'?: (string);
}

/**
 * Request of GetSchedule.
 */
export interface GetScheduleRequest__Output {
  /**
   * Required. The schedule.
   */
  'scheduleId': (string);
}
