// Original file: runservice/v1/schedule_service.proto

/**
 * What happens to ticks that fell while no server was running (missed by more
 * than a few seconds).
 */
export const ScheduleMissedPolicy = {
  /**
   * Never set by the server.
   */
  SCHEDULE_MISSED_POLICY_UNSPECIFIED: 'SCHEDULE_MISSED_POLICY_UNSPECIFIED',
  /**
   * Fire nothing for the past; wait for the next tick (the default).
   */
  SCHEDULE_MISSED_POLICY_SKIP: 'SCHEDULE_MISSED_POLICY_SKIP',
  /**
   * Fire one run for the most recent missed tick, then follow the cadence.
   */
  SCHEDULE_MISSED_POLICY_RUN_ONCE: 'SCHEDULE_MISSED_POLICY_RUN_ONCE',
} as const;

/**
 * What happens to ticks that fell while no server was running (missed by more
 * than a few seconds).
 */
export type ScheduleMissedPolicy =
  /**
   * Never set by the server.
   */
  | 'SCHEDULE_MISSED_POLICY_UNSPECIFIED'
  | 0
  /**
   * Fire nothing for the past; wait for the next tick (the default).
   */
  | 'SCHEDULE_MISSED_POLICY_SKIP'
  | 1
  /**
   * Fire one run for the most recent missed tick, then follow the cadence.
   */
  | 'SCHEDULE_MISSED_POLICY_RUN_ONCE'
  | 2

/**
 * What happens to ticks that fell while no server was running (missed by more
 * than a few seconds).
 */
export type ScheduleMissedPolicy__Output = typeof ScheduleMissedPolicy[keyof typeof ScheduleMissedPolicy]
