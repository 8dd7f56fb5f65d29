// Original file: runservice/v1/run_service.proto

/**
 * How much of a run a read returns. A reply larger than the server can send fails
 * with RESOURCE_EXHAUSTED (reason REPLY_TOO_LARGE): ask again with a smaller view.
 */
export const RunView = {
  /**
   * The RPC's default: RUN_VIEW_FULL for GetRun, RUN_VIEW_SUMMARY for ListRuns.
   */
  RUN_VIEW_UNSPECIFIED: 'RUN_VIEW_UNSPECIFIED',
  /**
   * Ids, status, error, suspended paths, resume labels, sequence and times; no input,
   * result, request context, state or step records.
   */
  RUN_VIEW_SUMMARY: 'RUN_VIEW_SUMMARY',
  /**
   * Everything but the JSON data of the step records (payload, output, suspend and
   * resume payloads, foreach item outputs); their statuses, errors and times stay.
   * ListRuns has no step records, so there it is the same as RUN_VIEW_FULL.
   */
  RUN_VIEW_WITHOUT_PAYLOADS: 'RUN_VIEW_WITHOUT_PAYLOADS',
  /**
   * Everything: input, result, request context and (GetRun) step records with their
   * JSON data; the state only with GetRunRequest.include_state.
   */
  RUN_VIEW_FULL: 'RUN_VIEW_FULL',
} as const;

/**
 * How much of a run a read returns. A reply larger than the server can send fails
 * with RESOURCE_EXHAUSTED (reason REPLY_TOO_LARGE): ask again with a smaller view.
 */
export type RunView =
  /**
   * The RPC's default: RUN_VIEW_FULL for GetRun, RUN_VIEW_SUMMARY for ListRuns.
   */
  | 'RUN_VIEW_UNSPECIFIED'
  | 0
  /**
   * Ids, status, error, suspended paths, resume labels, sequence and times; no input,
   * result, request context, state or step records.
   */
  | 'RUN_VIEW_SUMMARY'
  | 1
  /**
   * Everything but the JSON data of the step records (payload, output, suspend and
   * resume payloads, foreach item outputs); their statuses, errors and times stay.
   * ListRuns has no step records, so there it is the same as RUN_VIEW_FULL.
   */
  | 'RUN_VIEW_WITHOUT_PAYLOADS'
  | 2
  /**
   * Everything: input, result, request context and (GetRun) step records with their
   * JSON data; the state only with GetRunRequest.include_state.
   */
  | 'RUN_VIEW_FULL'
  | 3

/**
 * How much of a run a read returns. A reply larger than the server can send fails
 * with RESOURCE_EXHAUSTED (reason REPLY_TOO_LARGE): ask again with a smaller view.
 */
export type RunView__Output = typeof RunView[keyof typeof RunView]
