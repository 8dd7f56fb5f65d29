// Original file: runservice/v1/run.proto

/**
 * What began an execution of a run: the cause of its RUN_EVENT_TYPE_WORKFLOW_START.
 */
export const ExecutionCause = {
  /**
   * Not a WORKFLOW_START, or one written before causes were recorded; clients must
   * treat values they do not know the same way.
   */
  EXECUTION_CAUSE_UNSPECIFIED: 'EXECUTION_CAUSE_UNSPECIFIED',
  /**
   * The run's first execution: a Start, or a schedule's tick.
   */
  EXECUTION_CAUSE_START: 'EXECUTION_CAUSE_START',
  /**
   * A Resume of a suspended step.
   */
  EXECUTION_CAUSE_RESUME: 'EXECUTION_CAUSE_RESUME',
  /**
   * No call: a nested workflow suspended in the run passed its deadline, and the run is
   * driven again to fail that workflow with its timeout.
   */
  EXECUTION_CAUSE_DEADLINE: 'EXECUTION_CAUSE_DEADLINE',
  /**
   * A TimeTravel of this run (a RUN_EVENT_TYPE_TIME_TRAVEL precedes it).
   */
  EXECUTION_CAUSE_TIME_TRAVEL: 'EXECUTION_CAUSE_TIME_TRAVEL',
  /**
   * The first execution of a run ForkRun made (a RUN_EVENT_TYPE_TIME_TRAVEL precedes it).
   */
  EXECUTION_CAUSE_FORK: 'EXECUTION_CAUSE_FORK',
} as const;

/**
 * What began an execution of a run: the cause of its RUN_EVENT_TYPE_WORKFLOW_START.
 */
export type ExecutionCause =
  /**
   * Not a WORKFLOW_START, or one written before causes were recorded; clients must
   * treat values they do not know the same way.
   */
  | 'EXECUTION_CAUSE_UNSPECIFIED'
  | 0
  /**
   * The run's first execution: a Start, or a schedule's tick.
   */
  | 'EXECUTION_CAUSE_START'
  | 1
  /**
   * A Resume of a suspended step.
   */
  | 'EXECUTION_CAUSE_RESUME'
  | 2
  /**
   * No call: a nested workflow suspended in the run passed its deadline, and the run is
   * driven again to fail that workflow with its timeout.
   */
  | 'EXECUTION_CAUSE_DEADLINE'
  | 3
  /**
   * A TimeTravel of this run (a RUN_EVENT_TYPE_TIME_TRAVEL precedes it).
   */
  | 'EXECUTION_CAUSE_TIME_TRAVEL'
  | 4
  /**
   * The first execution of a run ForkRun made (a RUN_EVENT_TYPE_TIME_TRAVEL precedes it).
   */
  | 'EXECUTION_CAUSE_FORK'
  | 5

/**
 * What began an execution of a run: the cause of its RUN_EVENT_TYPE_WORKFLOW_START.
 */
export type ExecutionCause__Output = typeof ExecutionCause[keyof typeof ExecutionCause]
