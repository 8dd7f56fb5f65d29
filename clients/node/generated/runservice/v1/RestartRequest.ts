// Original file: runservice/v1/run_service.proto


/**
 * Request of Restart.
 */
export interface RestartRequest {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId'?: (string);
  /**
   * Required. The run to re-drive.
   */
  'runId'?: (string);
  /**
   * True: return only when the run is terminal or suspended. False: return at once.
   */
  'wait'?: (boolean);
  /**
   * Optional idempotency key. A retry with the same key re-drives nothing and
   * returns the run as it is, even once it has settled (where a new Restart
   * would be FAILED_PRECONDITION, reason RUN_NOT_ACTIVE).
   */
  'requestId'?: (string);
}

/**
 * Request of Restart.
 */
export interface RestartRequest__Output {
  /**
   * Optional. When set, must be the run's workflow.
   */
  'workflowId': (string);
  /**
   * Required. The run to re-drive.
   */
  'runId': (string);
  /**
   * True: return only when the run is terminal or suspended. False: return at once.
   */
  'wait': (boolean);
  /**
   * Optional idempotency key. A retry with the same key re-drives nothing and
   * returns the run as it is, even once it has settled (where a new Restart
   * would be FAILED_PRECONDITION, reason RUN_NOT_ACTIVE).
   */
  'requestId': (string);
}
