// Original file: runservice/v1/run_service.proto


/**
 * Response of DeleteRun.
 */
export interface DeleteRunResponse {
}

/**
 * Response of DeleteRun.
 */
export interface DeleteRunResponse__Output {
}
