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
  /**
   * Optional idempotency key. A retry with the same key succeeds once the run
   * is gone, where a new DeleteRun would be NOT_FOUND (reason RUN_NOT_FOUND),
   * and never deletes a run made later under the same id. The server keeps the
   * key for a day after the delete; a retry after that is a new DeleteRun.
   */
  'requestId'?: (string);
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
  /**
   * Optional idempotency key. A retry with the same key succeeds once the run
   * is gone, where a new DeleteRun would be NOT_FOUND (reason RUN_NOT_FOUND),
   * and never deletes a run made later under the same id. The server keeps the
   * key for a day after the delete; a retry after that is a new DeleteRun.
   */
  'requestId': (string);
}
