// Original file: runservice/v1/schedule_service.proto

import type { TriggerOutcome as _runservice_v1_TriggerOutcome, TriggerOutcome__Output as _runservice_v1_TriggerOutcome__Output } from '../../runservice/v1/TriggerOutcome';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';
import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from '../../runservice/v1/Schedule';

/**
 * Response of TriggerSchedule.
 */
export interface TriggerScheduleResponse {
  /**
   * What happened.
   */
  'outcome'?: (_runservice_v1_TriggerOutcome);
  /**
   * The tick time given to this trigger (now).
   */
  'tickTime'?: (_google_protobuf_Timestamp | null);
  /**
   * The run started, when outcome is TRIGGER_OUTCOME_STARTED.
   */
  'run'?: (_runservice_v1_Run | null);
  /**
   * The active run that made the trigger skip or buffer; empty otherwise.
   */
  'activeRunId'?: (string);
  /**
   * The schedule after the trigger.
   */
  'schedule'?: (_runservice_v1_Schedule | null);
}

/**
 * Response of TriggerSchedule.
 */
export interface TriggerScheduleResponse__Output {
  /**
   * What happened.
   */
  'outcome': (_runservice_v1_TriggerOutcome__Output);
  /**
   * The tick time given to this trigger (now).
   */
  'tickTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * The run started, when outcome is TRIGGER_OUTCOME_STARTED.
   */
  'run': (_runservice_v1_Run__Output | null);
  /**
   * The active run that made the trigger skip or buffer; empty otherwise.
   */
  'activeRunId': (string);
  /**
   * The schedule after the trigger.
   */
  'schedule': (_runservice_v1_Schedule__Output | null);
}
