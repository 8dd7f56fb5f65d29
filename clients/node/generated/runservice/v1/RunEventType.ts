// Original file: runservice/v1/run.proto

/**
 * Kind of a run event. Mirrors Mastra's workflow stream chunk types.
 */
export const RunEventType = {
  /**
   * Never set by the server; clients must skip kinds they do not know.
   */
  RUN_EVENT_TYPE_UNSPECIFIED: 'RUN_EVENT_TYPE_UNSPECIFIED',
  /**
   * The run started or was resumed (`workflow-start`).
   */
  RUN_EVENT_TYPE_WORKFLOW_START: 'RUN_EVENT_TYPE_WORKFLOW_START',
  /**
   * A step started or re-entered after a resume (`workflow-step-start`).
   */
  RUN_EVENT_TYPE_STEP_START: 'RUN_EVENT_TYPE_STEP_START',
  /**
   * A step finished, successfully or not (`workflow-step-result`).
   */
  RUN_EVENT_TYPE_STEP_RESULT: 'RUN_EVENT_TYPE_STEP_RESULT',
  /**
   * A step suspended (`workflow-step-suspended`).
   */
  RUN_EVENT_TYPE_STEP_SUSPENDED: 'RUN_EVENT_TYPE_STEP_SUSPENDED',
  /**
   * A sleep step started waiting (`workflow-step-waiting`).
   */
  RUN_EVENT_TYPE_STEP_WAITING: 'RUN_EVENT_TYPE_STEP_WAITING',
  /**
   * A step wrote through its writer (`workflow-step-output`); see RunEvent.data.
   */
  RUN_EVENT_TYPE_STEP_OUTPUT: 'RUN_EVENT_TYPE_STEP_OUTPUT',
  /**
   * A foreach item finished or suspended (`workflow-step-progress`).
   */
  RUN_EVENT_TYPE_STEP_PROGRESS: 'RUN_EVENT_TYPE_STEP_PROGRESS',
  /**
   * The run was canceled (`workflow-canceled`).
   */
  RUN_EVENT_TYPE_WORKFLOW_CANCELED: 'RUN_EVENT_TYPE_WORKFLOW_CANCELED',
  /**
   * The run stopped: terminal, or suspended until the next Resume (`workflow-finish`).
   */
  RUN_EVENT_TYPE_WORKFLOW_FINISH: 'RUN_EVENT_TYPE_WORKFLOW_FINISH',
  /**
   * The run is executed again from a step (TimeTravel), or was forked (ForkRun); a
   * WORKFLOW_START follows. RunEvent.data is an object: `step` (the path), and
   * `replaced_steps` (dotted paths of the step records that were replaced: their
   * earlier events stay in the log) with `previous` (the earlier outcome: run_id,
   * status, result, error, last_sequence) for TimeTravel, or `forked_from` (the same
   * fields, of the original run) for ForkRun; `resume_data` when the request had some.
   */
  RUN_EVENT_TYPE_TIME_TRAVEL: 'RUN_EVENT_TYPE_TIME_TRAVEL',
} as const;

/**
 * Kind of a run event. Mirrors Mastra's workflow stream chunk types.
 */
export type RunEventType =
  /**
   * Never set by the server; clients must skip kinds they do not know.
   */
  | 'RUN_EVENT_TYPE_UNSPECIFIED'
  | 0
  /**
   * The run started or was resumed (`workflow-start`).
   */
  | 'RUN_EVENT_TYPE_WORKFLOW_START'
  | 1
  /**
   * A step started or re-entered after a resume (`workflow-step-start`).
   */
  | 'RUN_EVENT_TYPE_STEP_START'
  | 2
  /**
   * A step finished, successfully or not (`workflow-step-result`).
   */
  | 'RUN_EVENT_TYPE_STEP_RESULT'
  | 3
  /**
   * A step suspended (`workflow-step-suspended`).
   */
  | 'RUN_EVENT_TYPE_STEP_SUSPENDED'
  | 4
  /**
   * A sleep step started waiting (`workflow-step-waiting`).
   */
  | 'RUN_EVENT_TYPE_STEP_WAITING'
  | 5
  /**
   * A step wrote through its writer (`workflow-step-output`); see RunEvent.data.
   */
  | 'RUN_EVENT_TYPE_STEP_OUTPUT'
  | 6
  /**
   * A foreach item finished or suspended (`workflow-step-progress`).
   */
  | 'RUN_EVENT_TYPE_STEP_PROGRESS'
  | 7
  /**
   * The run was canceled (`workflow-canceled`).
   */
  | 'RUN_EVENT_TYPE_WORKFLOW_CANCELED'
  | 8
  /**
   * The run stopped: terminal, or suspended until the next Resume (`workflow-finish`).
   */
  | 'RUN_EVENT_TYPE_WORKFLOW_FINISH'
  | 9
  /**
   * The run is executed again from a step (TimeTravel), or was forked (ForkRun); a
   * WORKFLOW_START follows. RunEvent.data is an object: `step` (the path), and
   * `replaced_steps` (dotted paths of the step records that were replaced: their
   * earlier events stay in the log) with `previous` (the earlier outcome: run_id,
   * status, result, error, last_sequence) for TimeTravel, or `forked_from` (the same
   * fields, of the original run) for ForkRun; `resume_data` when the request had some.
   */
  | 'RUN_EVENT_TYPE_TIME_TRAVEL'
  | 10

/**
 * Kind of a run event. Mirrors Mastra's workflow stream chunk types.
 */
export type RunEventType__Output = typeof RunEventType[keyof typeof RunEventType]
