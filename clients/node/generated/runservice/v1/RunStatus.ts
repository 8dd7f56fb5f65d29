// Original file: runservice/v1/run.proto

/**
 * Lifecycle status of a run. Mirrors Mastra's run statuses. Clients must treat
 * values they do not know as "not terminal".
 */
export const RunStatus = {
  /**
   * Never set by the server.
   */
  RUN_STATUS_UNSPECIFIED: 'RUN_STATUS_UNSPECIFIED',
  /**
   * Created (CreateRun) but not started yet.
   */
  RUN_STATUS_PENDING: 'RUN_STATUS_PENDING',
  /**
   * Executing steps.
   */
  RUN_STATUS_RUNNING: 'RUN_STATUS_RUNNING',
  /**
   * Sleeping in a sleep or sleep_until step; wakes up by itself.
   */
  RUN_STATUS_WAITING: 'RUN_STATUS_WAITING',
  /**
   * At least one step is suspended and waits for Resume.
   */
  RUN_STATUS_SUSPENDED: 'RUN_STATUS_SUSPENDED',
  /**
   * Terminal: finished with a result.
   */
  RUN_STATUS_SUCCESS: 'RUN_STATUS_SUCCESS',
  /**
   * Terminal: a step failed; see Run.error.
   */
  RUN_STATUS_FAILED: 'RUN_STATUS_FAILED',
  /**
   * Terminal: canceled by Cancel.
   */
  RUN_STATUS_CANCELED: 'RUN_STATUS_CANCELED',
} as const;

/**
 * Lifecycle status of a run. Mirrors Mastra's run statuses. Clients must treat
 * values they do not know as "not terminal".
 */
export type RunStatus =
  /**
   * Never set by the server.
   */
  | 'RUN_STATUS_UNSPECIFIED'
  | 0
  /**
   * Created (CreateRun) but not started yet.
   */
  | 'RUN_STATUS_PENDING'
  | 1
  /**
   * Executing steps.
   */
  | 'RUN_STATUS_RUNNING'
  | 2
  /**
   * Sleeping in a sleep or sleep_until step; wakes up by itself.
   */
  | 'RUN_STATUS_WAITING'
  | 3
  /**
   * At least one step is suspended and waits for Resume.
   */
  | 'RUN_STATUS_SUSPENDED'
  | 4
  /**
   * Terminal: finished with a result.
   */
  | 'RUN_STATUS_SUCCESS'
  | 5
  /**
   * Terminal: a step failed; see Run.error.
   */
  | 'RUN_STATUS_FAILED'
  | 6
  /**
   * Terminal: canceled by Cancel.
   */
  | 'RUN_STATUS_CANCELED'
  | 7

/**
 * Lifecycle status of a run. Mirrors Mastra's run statuses. Clients must treat
 * values they do not know as "not terminal".
 */
export type RunStatus__Output = typeof RunStatus[keyof typeof RunStatus]
