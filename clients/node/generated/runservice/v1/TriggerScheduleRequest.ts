// Original file: runservice/v1/schedule_service.proto


/**
 * Request of TriggerSchedule.
 */
export interface TriggerScheduleRequest {
  /**
   * Required. The schedule.
   */
  'scheduleId'?: (string);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * (the same run, or the same skip or buffer) instead of firing the schedule again,
   * across restarts and replicas.
   */
  'requestId'?: (string);
}

/**
 * Request of TriggerSchedule.
 */
export interface TriggerScheduleRequest__Output {
  /**
   * Required. The schedule.
   */
  'scheduleId': (string);
  /**
   * Optional idempotency key. A retry with the same key returns the first outcome
   * (the same run, or the same skip or buffer) instead of firing the schedule again,
   * across restarts and replicas.
   */
  'requestId': (string);
}
