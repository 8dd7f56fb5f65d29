// Original file: runservice/v1/schedule_service.proto

/**
 * What TriggerSchedule did.
 */
export const TriggerOutcome = {
  /**
   * Never set by the server.
   */
  TRIGGER_OUTCOME_UNSPECIFIED: 'TRIGGER_OUTCOME_UNSPECIFIED',
  /**
   * A run started; see TriggerScheduleResponse.run.
   */
  TRIGGER_OUTCOME_STARTED: 'TRIGGER_OUTCOME_STARTED',
  /**
   * Nothing started: a run of the schedule is active and its overlap policy is
   * skip (or buffer_one with a tick already pending); see active_run_id.
   */
  TRIGGER_OUTCOME_SKIPPED: 'TRIGGER_OUTCOME_SKIPPED',
  /**
   * Kept by the buffer_one policy: it starts when the active run ends.
   */
  TRIGGER_OUTCOME_BUFFERED: 'TRIGGER_OUTCOME_BUFFERED',
} as const;

/**
 * What TriggerSchedule did.
 */
export type TriggerOutcome =
  /**
   * Never set by the server.
   */
  | 'TRIGGER_OUTCOME_UNSPECIFIED'
  | 0
  /**
   * A run started; see TriggerScheduleResponse.run.
   */
  | 'TRIGGER_OUTCOME_STARTED'
  | 1
  /**
   * Nothing started: a run of the schedule is active and its overlap policy is
   * skip (or buffer_one with a tick already pending); see active_run_id.
   */
  | 'TRIGGER_OUTCOME_SKIPPED'
  | 2
  /**
   * Kept by the buffer_one policy: it starts when the active run ends.
   */
  | 'TRIGGER_OUTCOME_BUFFERED'
  | 3

/**
 * What TriggerSchedule did.
 */
export type TriggerOutcome__Output = typeof TriggerOutcome[keyof typeof TriggerOutcome]
