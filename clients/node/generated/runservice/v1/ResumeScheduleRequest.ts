// Original file: runservice/v1/schedule_service.proto


/**
 * Request of ResumeSchedule.
 */
export interface ResumeScheduleRequest {
  /**
   * Required. The schedule.
   */
  'scheduleId'?: (string);
}

/**
 * Request of ResumeSchedule.
 */
export interface ResumeScheduleRequest__Output {
  /**
   * Required. The schedule.
   */
  'scheduleId': (string);
}
