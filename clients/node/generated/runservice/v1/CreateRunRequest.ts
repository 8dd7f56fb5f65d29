// Original file: runservice/v1/run_service.proto


/**
 * Request of CreateRun.
 */
export interface CreateRunRequest {
  /**
   * Required. The workflow the run will execute.
   */
  'workflowId'?: (string);
  /**
   * Optional. 1-128 characters of [A-Za-z0-9._:-]; generated when empty. If a run
   * with this id exists for the same workflow it is returned unchanged.
   */
  'runId'?: (string);
  /**
   * Optional owner of the run (user, tenant); persisted and usable as a ListRuns filter.
   */
  'resourceId'?: (string);
}

/**
 * Request of CreateRun.
 */
export interface CreateRunRequest__Output {
  /**
   * Required. The workflow the run will execute.
   */
  'workflowId': (string);
  /**
   * Optional. 1-128 characters of [A-Za-z0-9._:-]; generated when empty. If a run
   * with this id exists for the same workflow it is returned unchanged.
   */
  'runId': (string);
  /**
   * Optional owner of the run (user, tenant); persisted and usable as a ListRuns filter.
   */
  'resourceId': (string);
}
