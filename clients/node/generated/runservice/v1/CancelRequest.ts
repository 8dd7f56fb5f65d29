// Original file: runservice/v1/run_service.proto


/**
 * Request of Cancel.
 */
export interface CancelRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run to cancel.
   */
  'runId'?: (string);
  /**
   * Optional idempotency key.
   */
  'requestId'?: (string);
}

/**
 * Request of Cancel.
 */
export interface CancelRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run to cancel.
   */
  'runId': (string);
  /**
   * Optional idempotency key.
   */
  'requestId': (string);
}
