// Original file: runservice/v1/schedule_service.proto


/**
 * Request of TriggerSchedule.
 */
export interface TriggerScheduleRequest {
  /**
   * Required. The schedule.
   */
  'scheduleId'?: (string);
}

/**
 * Request of TriggerSchedule.
 */
export interface TriggerScheduleRequest__Output {
  /**
   * Required. The schedule.
   */
  'scheduleId': (string);
}
