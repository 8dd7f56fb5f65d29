// Original file: runservice/v1/schedule_service.proto

/**
 * What a tick does while a run of the same schedule is still active (pending,
 * running, waiting or suspended).
 */
export const ScheduleOverlapPolicy = {
  /**
   * Never set by the server.
   */
  SCHEDULE_OVERLAP_POLICY_UNSPECIFIED: 'SCHEDULE_OVERLAP_POLICY_UNSPECIFIED',
  /**
   * Start nothing for that tick (the default).
   */
  SCHEDULE_OVERLAP_POLICY_SKIP: 'SCHEDULE_OVERLAP_POLICY_SKIP',
  /**
   * Start the run anyway: runs of the schedule may overlap.
   */
  SCHEDULE_OVERLAP_POLICY_ALLOW: 'SCHEDULE_OVERLAP_POLICY_ALLOW',
  /**
   * Keep one tick pending and start it when the active run ends; further
   * ticks meanwhile are skipped.
   */
  SCHEDULE_OVERLAP_POLICY_BUFFER_ONE: 'SCHEDULE_OVERLAP_POLICY_BUFFER_ONE',
} as const;

/**
 * What a tick does while a run of the same schedule is still active (pending,
 * running, waiting or suspended).
 */
export type ScheduleOverlapPolicy =
  /**
   * Never set by the server.
   */
  | 'SCHEDULE_OVERLAP_POLICY_UNSPECIFIED'
  | 0
  /**
   * Start nothing for that tick (the default).
   */
  | 'SCHEDULE_OVERLAP_POLICY_SKIP'
  | 1
  /**
   * Start the run anyway: runs of the schedule may overlap.
   */
  | 'SCHEDULE_OVERLAP_POLICY_ALLOW'
  | 2
  /**
   * Keep one tick pending and start it when the active run ends; further
   * ticks meanwhile are skipped.
   */
  | 'SCHEDULE_OVERLAP_POLICY_BUFFER_ONE'
  | 3

/**
 * What a tick does while a run of the same schedule is still active (pending,
 * running, waiting or suspended).
 */
export type ScheduleOverlapPolicy__Output = typeof ScheduleOverlapPolicy[keyof typeof ScheduleOverlapPolicy]
