// Original file: runservice/v1/run_service.proto


/**
 * Request of GetRun.
 */
export interface GetRunRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run.
   */
  'runId'?: (string);
  /**
   * Include the run-wide state in Run.state.
   */
  'includeState'?: (boolean);
}

/**
 * Request of GetRun.
 */
export interface GetRunRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run.
   */
  'runId': (string);
  /**
   * Include the run-wide state in Run.state.
   */
  'includeState': (boolean);
}
