// Original file: runservice/v1/run_service.proto


/**
 * Request of GetWorkflow.
 */
export interface GetWorkflowRequest {
  /**
   * Required. The workflow id.
   */
  'workflowId'?: (string);
}

/**
 * Request of GetWorkflow.
 */
export interface GetWorkflowRequest__Output {
  /**
   * Required. The workflow id.
   */
  'workflowId': (string);
}
