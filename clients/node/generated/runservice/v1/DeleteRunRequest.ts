// Original file: runservice/v1/run_service.proto


/**
 * Request of DeleteRun.
 */
export interface DeleteRunRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run to delete.
   */
  'runId'?: (string);
}

/**
 * Request of DeleteRun.
 */
export interface DeleteRunRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run to delete.
   */
  'runId': (string);
}
