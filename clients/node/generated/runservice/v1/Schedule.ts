// Original file: runservice/v1/schedule_service.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { ScheduleOverlapPolicy as _runservice_v1_ScheduleOverlapPolicy, ScheduleOverlapPolicy__Output as _runservice_v1_ScheduleOverlapPolicy__Output } from '../../runservice/v1/ScheduleOverlapPolicy';
import type { ScheduleMissedPolicy as _runservice_v1_ScheduleMissedPolicy, ScheduleMissedPolicy__Output as _runservice_v1_ScheduleMissedPolicy__Output } from '../../runservice/v1/ScheduleMissedPolicy';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

/**
 * A cron schedule and where it stands.
 */
export interface Schedule {
  /**
   * Unique id of the schedule.
   */
  'scheduleId'?: (string);
  /**
   * The workflow whose runs it starts.
   */
  'workflowId'?: (string);
  /**
   * Cron expression: 5 fields (minute hour day month weekday), or 6 with a
   * trailing seconds field.
   */
  'cron'?: (string);
  /**
   * IANA time zone the cron expression is read in, for example "Europe/Paris".
   */
  'timezone'?: (string);
  /**
   * Input data of every run it starts.
   */
  'input'?: (_google_protobuf_Value | null);
  /**
   * Resource id of the runs it starts; empty for none.
   */
  'resourceId'?: (string);
  /**
   * Overlap policy.
   */
  'overlapPolicy'?: (_runservice_v1_ScheduleOverlapPolicy);
  /**
   * Missed-tick policy.
   */
  'missedPolicy'?: (_runservice_v1_ScheduleMissedPolicy);
  /**
   * Free text from the declaration.
   */
  'description'?: (string);
  /**
   * True while paused (PauseSchedule).
   */
  'paused'?: (boolean);
  /**
   * When the next cron tick is due; unset while paused.
   */
  'nextTickTime'?: (_google_protobuf_Timestamp | null);
  /**
   * The last tick that started a run; unset if none did.
   */
  'lastTickTime'?: (_google_protobuf_Timestamp | null);
  /**
   * A tick kept by the buffer_one policy until the active run ends; unset if none.
   */
  'pendingTickTime'?: (_google_protobuf_Timestamp | null);
  /**
   * The last run the schedule started; empty if none.
   */
  'lastRunId'?: (string);
  /**
   * When the schedule was first declared.
   */
  'createTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When the schedule last changed (declaration, pause, resume or tick).
   */
  'updateTime'?: (_google_protobuf_Timestamp | null);
}

/**
 * A cron schedule and where it stands.
 */
export interface Schedule__Output {
  /**
   * Unique id of the schedule.
   */
  'scheduleId': (string);
  /**
   * The workflow whose runs it starts.
   */
  'workflowId': (string);
  /**
   * Cron expression: 5 fields (minute hour day month weekday), or 6 with a
   * trailing seconds field.
   */
  'cron': (string);
  /**
   * IANA time zone the cron expression is read in, for example "Europe/Paris".
   */
  'timezone': (string);
  /**
   * Input data of every run it starts.
   */
  'input': (_google_protobuf_Value__Output | null);
  /**
   * Resource id of the runs it starts; empty for none.
   */
  'resourceId': (string);
  /**
   * Overlap policy.
   */
  'overlapPolicy': (_runservice_v1_ScheduleOverlapPolicy__Output);
  /**
   * Missed-tick policy.
   */
  'missedPolicy': (_runservice_v1_ScheduleMissedPolicy__Output);
  /**
   * Free text from the declaration.
   */
  'description': (string);
  /**
   * True while paused (PauseSchedule).
   */
  'paused': (boolean);
  /**
   * When the next cron tick is due; unset while paused.
   */
  'nextTickTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * The last tick that started a run; unset if none did.
   */
  'lastTickTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * A tick kept by the buffer_one policy until the active run ends; unset if none.
   */
  'pendingTickTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * The last run the schedule started; empty if none.
   */
  'lastRunId': (string);
  /**
   * When the schedule was first declared.
   */
  'createTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the schedule last changed (declaration, pause, resume or tick).
   */
  'updateTime': (_google_protobuf_Timestamp__Output | null);
}
