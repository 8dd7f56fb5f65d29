// Original file: runservice/v1/run.proto

/**
 * Status of one step record. Mirrors Mastra's step statuses.
 */
export const StepStatus = {
  /**
   * Never set by the server.
   */
  STEP_STATUS_UNSPECIFIED: 'STEP_STATUS_UNSPECIFIED',
  /**
   * The step body is executing.
   */
  STEP_STATUS_RUNNING: 'STEP_STATUS_RUNNING',
  /**
   * A sleep step is waiting for its wake-up time.
   */
  STEP_STATUS_WAITING: 'STEP_STATUS_WAITING',
  /**
   * The step called suspend and waits for Resume.
   */
  STEP_STATUS_SUSPENDED: 'STEP_STATUS_SUSPENDED',
  /**
   * The step finished; see StepRecord.output.
   */
  STEP_STATUS_SUCCESS: 'STEP_STATUS_SUCCESS',
  /**
   * The step failed after its retries; see StepRecord.error.
   */
  STEP_STATUS_FAILED: 'STEP_STATUS_FAILED',
  /**
   * The step was stopped by Cancel.
   */
  STEP_STATUS_CANCELED: 'STEP_STATUS_CANCELED',
  /**
   * The step was not run (for example an unselected branch).
   */
  STEP_STATUS_SKIPPED: 'STEP_STATUS_SKIPPED',
} as const;

/**
 * Status of one step record. Mirrors Mastra's step statuses.
 */
export type StepStatus =
  /**
   * Never set by the server.
   */
  | 'STEP_STATUS_UNSPECIFIED'
  | 0
  /**
   * The step body is executing.
   */
  | 'STEP_STATUS_RUNNING'
  | 1
  /**
   * A sleep step is waiting for its wake-up time.
   */
  | 'STEP_STATUS_WAITING'
  | 2
  /**
   * The step called suspend and waits for Resume.
   */
  | 'STEP_STATUS_SUSPENDED'
  | 3
  /**
   * The step finished; see StepRecord.output.
   */
  | 'STEP_STATUS_SUCCESS'
  | 4
  /**
   * The step failed after its retries; see StepRecord.error.
   */
  | 'STEP_STATUS_FAILED'
  | 5
  /**
   * The step was stopped by Cancel.
   */
  | 'STEP_STATUS_CANCELED'
  | 6
  /**
   * The step was not run (for example an unselected branch).
   */
  | 'STEP_STATUS_SKIPPED'
  | 7

/**
 * Status of one step record. Mirrors Mastra's step statuses.
 */
export type StepStatus__Output = typeof StepStatus[keyof typeof StepStatus]
