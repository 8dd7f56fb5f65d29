// Original file: runservice/v1/schedule_service.proto


/**
 * Request of ListSchedules.
 */
export interface ListSchedulesRequest {
  /**
   * Optional. Only the schedules of this workflow.
   */
  'workflowId'?: (string);
}

/**
 * Request of ListSchedules.
 */
export interface ListSchedulesRequest__Output {
  /**
   * Optional. Only the schedules of this workflow.
   */
  'workflowId': (string);
}
