// Original file: runservice/v1/run.proto

import type { RunStatus as _runservice_v1_RunStatus, RunStatus__Output as _runservice_v1_RunStatus__Output } from '../../runservice/v1/RunStatus';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';
import type { StepRecord as _runservice_v1_StepRecord, StepRecord__Output as _runservice_v1_StepRecord__Output } from '../../runservice/v1/StepRecord';
import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from '../../runservice/v1/StepPath';
import type { ResumeLabelTarget as _runservice_v1_ResumeLabelTarget, ResumeLabelTarget__Output as _runservice_v1_ResumeLabelTarget__Output } from '../../runservice/v1/ResumeLabelTarget';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Long } from '@grpc/proto-loader';

/**
 * A workflow run.
 */
export interface Run {
  /**
   * Unique run id (client-chosen or generated).
   */
  'runId'?: (string);
  /**
   * Id of the workflow this run executes.
   */
  'workflowId'?: (string);
  /**
   * Optional owner of the run (user, tenant), given at CreateRun.
   */
  'resourceId'?: (string);
  /**
   * Current status.
   */
  'status'?: (_runservice_v1_RunStatus);
  /**
   * The run input after validation (schema defaults applied).
   */
  'input'?: (_google_protobuf_Value | null);
  /**
   * The result; set when status is RUN_STATUS_SUCCESS.
   */
  'result'?: (_google_protobuf_Value | null);
  /**
   * The error; set when status is RUN_STATUS_FAILED.
   */
  'error'?: (_runservice_v1_RunError | null);
  /**
   * Every step record, in the order the steps first started. Nested steps appear
   * under their full path.
   */
  'steps'?: (_runservice_v1_StepRecord)[];
  /**
   * Paths of the steps that are suspended now (Mastra's `suspended`).
   */
  'suspended'?: (_runservice_v1_StepPath)[];
  /**
   * The run-wide state; only set when the request asked for it.
   */
  'state'?: (_google_protobuf_Value | null);
  /**
   * Resume labels registered by suspended steps.
   */
  'resumeLabels'?: ({[key: string]: _runservice_v1_ResumeLabelTarget});
  /**
   * The request context the run was started with.
   */
  'requestContext'?: (_google_protobuf_Value | null);
  /**
   * Sequence of the last event of this run; a valid Watch after_sequence.
   */
  'lastSequence'?: (number | string | Long);
  /**
   * When the run was created.
   */
  'createTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When the run was last changed.
   */
  'updateTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When the run was first started.
   */
  'startTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When the run reached a terminal status.
   */
  'endTime'?: (_google_protobuf_Timestamp | null);
  /**
   * Trace id of the run, for correlating logs and traces.
   */
  'traceId'?: (string);
  /**
   * When a waiting run wakes up; for a suspended run, when the earliest deadline of a
   * nested workflow suspended inside it passes (the run is then driven and that workflow
   * fails with its timeout, without a resume). Unset when nothing is due.
   */
  'wakeTime'?: (_google_protobuf_Timestamp | null);
  /**
   * The workflow version the run started on; it finishes on that version. Runs
   * stored before versions existed report "1" (the default version).
   */
  'definitionVersion'?: (string);
  /**
   * Digest ("sha256:<hex>") of the step graph of that version when the run
   * started; empty for runs stored before digests existed.
   */
  'definitionDigest'?: (string);
  /**
   * When the run times out; unset when it has no timeout. Fixed at Start (workflow
   * timeout and StartRequest.timeout) and stored, so it holds across restarts. Wall
   * clock: time suspended or sleeping counts. Past it the run ends RUN_STATUS_FAILED
   * with a RunError named "RunTimeoutError" (details.reason "RUN_DEADLINE_EXCEEDED").
   */
  'deadline'?: (_google_protobuf_Timestamp | null);
  /**
   * The run this one was forked from (ForkRun); empty for other runs.
   */
  'forkedFromRunId'?: (string);
  /**
   * For a fork: the step of forked_from_run_id it was forked at.
   */
  'forkedFromStep'?: (_runservice_v1_StepPath | null);
  /**
   * How many times TimeTravel re-executed this run (a fork starts at 0).
   */
  'timeTravelCount'?: (number);
  /**
   * The step the latest TimeTravel (or the ForkRun that made this run) started from.
   */
  'timeTravelStep'?: (_runservice_v1_StepPath | null);
  /**
   * The schedule that started the run (ScheduleService); empty for a run a
   * caller started.
   */
  'scheduleId'?: (string);
  /**
   * The tick of `schedule_id` that started the run; unset for a run a caller started.
   */
  'scheduleTickTime'?: (_google_protobuf_Timestamp | null);
}

/**
 * A workflow run.
 */
export interface Run__Output {
  /**
   * Unique run id (client-chosen or generated).
   */
  'runId': (string);
  /**
   * Id of the workflow this run executes.
   */
  'workflowId': (string);
  /**
   * Optional owner of the run (user, tenant), given at CreateRun.
   */
  'resourceId': (string);
  /**
   * Current status.
   */
  'status': (_runservice_v1_RunStatus__Output);
  /**
   * The run input after validation (schema defaults applied).
   */
  'input': (_google_protobuf_Value__Output | null);
  /**
   * The result; set when status is RUN_STATUS_SUCCESS.
   */
  'result': (_google_protobuf_Value__Output | null);
  /**
   * The error; set when status is RUN_STATUS_FAILED.
   */
  'error': (_runservice_v1_RunError__Output | null);
  /**
   * Every step record, in the order the steps first started. Nested steps appear
   * under their full path.
   */
  'steps': (_runservice_v1_StepRecord__Output)[];
  /**
   * Paths of the steps that are suspended now (Mastra's `suspended`).
   */
  'suspended': (_runservice_v1_StepPath__Output)[];
  /**
   * The run-wide state; only set when the request asked for it.
   */
  'state': (_google_protobuf_Value__Output | null);
  /**
   * Resume labels registered by suspended steps.
   */
  'resumeLabels': ({[key: string]: _runservice_v1_ResumeLabelTarget__Output});
  /**
   * The request context the run was started with.
   */
  'requestContext': (_google_protobuf_Value__Output | null);
  /**
   * Sequence of the last event of this run; a valid Watch after_sequence.
   */
  'lastSequence': (string);
  /**
   * When the run was created.
   */
  'createTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the run was last changed.
   */
  'updateTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the run was first started.
   */
  'startTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the run reached a terminal status.
   */
  'endTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * Trace id of the run, for correlating logs and traces.
   */
  'traceId': (string);
  /**
   * When a waiting run wakes up; for a suspended run, when the earliest deadline of a
   * nested workflow suspended inside it passes (the run is then driven and that workflow
   * fails with its timeout, without a resume). Unset when nothing is due.
   */
  'wakeTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * The workflow version the run started on; it finishes on that version. Runs
   * stored before versions existed report "1" (the default version).
   */
  'definitionVersion': (string);
  /**
   * Digest ("sha256:<hex>") of the step graph of that version when the run
   * started; empty for runs stored before digests existed.
   */
  'definitionDigest': (string);
  /**
   * When the run times out; unset when it has no timeout. Fixed at Start (workflow
   * timeout and StartRequest.timeout) and stored, so it holds across restarts. Wall
   * clock: time suspended or sleeping counts. Past it the run ends RUN_STATUS_FAILED
   * with a RunError named "RunTimeoutError" (details.reason "RUN_DEADLINE_EXCEEDED").
   */
  'deadline': (_google_protobuf_Timestamp__Output | null);
  /**
   * The run this one was forked from (ForkRun); empty for other runs.
   */
  'forkedFromRunId': (string);
  /**
   * For a fork: the step of forked_from_run_id it was forked at.
   */
  'forkedFromStep': (_runservice_v1_StepPath__Output | null);
  /**
   * How many times TimeTravel re-executed this run (a fork starts at 0).
   */
  'timeTravelCount': (number);
  /**
   * The step the latest TimeTravel (or the ForkRun that made this run) started from.
   */
  'timeTravelStep': (_runservice_v1_StepPath__Output | null);
  /**
   * The schedule that started the run (ScheduleService); empty for a run a
   * caller started.
   */
  'scheduleId': (string);
  /**
   * The tick of `schedule_id` that started the run; unset for a run a caller started.
   */
  'scheduleTickTime': (_google_protobuf_Timestamp__Output | null);
}
