// Original file: runservice/v1/run_service.proto


/**
 * Request of ListWorkflows.
 */
export interface ListWorkflowsRequest {
}

/**
 * Request of ListWorkflows.
 */
export interface ListWorkflowsRequest__Output {
}
