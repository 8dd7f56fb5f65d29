// Original file: runservice/v1/run.proto

import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from '../../runservice/v1/StepPath';
import type { StepStatus as _runservice_v1_StepStatus, StepStatus__Output as _runservice_v1_StepStatus__Output } from '../../runservice/v1/StepStatus';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from '../../runservice/v1/RunError';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { ForeachItem as _runservice_v1_ForeachItem, ForeachItem__Output as _runservice_v1_ForeachItem__Output } from '../../runservice/v1/ForeachItem';

/**
 * The record of one step of a run, as Mastra keeps it in its run snapshot.
 */
export interface StepRecord {
  /**
   * Where the step sits; a single id for top-level steps.
   */
  'path'?: (_runservice_v1_StepPath | null);
  /**
   * Current status of the step.
   */
  'status'?: (_runservice_v1_StepStatus);
  /**
   * The input the step received.
   */
  'payload'?: (_google_protobuf_Value | null);
  /**
   * The step's output; set when status is STEP_STATUS_SUCCESS.
   */
  'output'?: (_google_protobuf_Value | null);
  /**
   * The step's error; set when status is STEP_STATUS_FAILED.
   */
  'error'?: (_runservice_v1_RunError | null);
  /**
   * The payload the step passed to suspend; set while suspended.
   */
  'suspendPayload'?: (_google_protobuf_Value | null);
  /**
   * The resume data the step was resumed with; set after a resume (or a TimeTravel
   * with resume_data).
   */
  'resumePayload'?: (_google_protobuf_Value | null);
  /**
   * When the step body first started.
   */
  'startedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the step finished (success, failure or cancel).
   */
  'endedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the step suspended.
   */
  'suspendedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the step was resumed.
   */
  'resumedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Attempt index of the latest execution, 0 for the first (Mastra's retryCount).
   */
  'attempt'?: (number);
  /**
   * Loop iteration count (1-based) for the body of a dowhile or dountil loop; 0 otherwise.
   */
  'iteration'?: (number);
  /**
   * Resume labels the step registered when it suspended.
   */
  'resumeLabels'?: (string)[];
  /**
   * For a foreach step: one entry per item, in input order.
   */
  'foreachItems'?: (_runservice_v1_ForeachItem)[];
  /**
   * For a sleep step: when it wakes up.
   */
  'wakeAt'?: (_google_protobuf_Timestamp | null);
  /**
   * What the body returned after it called suspend, unless nothing (None; Mastra's
   * suspendOutput); set while suspended. Once a resumed step ends, the suspension's
   * suspend_payload, suspended_at and suspend_output are cleared, as in Mastra.
   */
  'suspendOutput'?: (_google_protobuf_Value | null);
  /**
   * Identifies one execution of the step (Mastra's stepCallId): a new id each time the step
   * begins, whether for the first time, after a resume, or again after a crash or a lease
   * taken over; its retries share it. Pairs a step's start event with its outcome, and tells
   * a body run again apart from a repeated event.
   */
  'callId'?: (string);
}

/**
 * The record of one step of a run, as Mastra keeps it in its run snapshot.
 */
export interface StepRecord__Output {
  /**
   * Where the step sits; a single id for top-level steps.
   */
  'path': (_runservice_v1_StepPath__Output | null);
  /**
   * Current status of the step.
   */
  'status': (_runservice_v1_StepStatus__Output);
  /**
   * The input the step received.
   */
  'payload': (_google_protobuf_Value__Output | null);
  /**
   * The step's output; set when status is STEP_STATUS_SUCCESS.
   */
  'output': (_google_protobuf_Value__Output | null);
  /**
   * The step's error; set when status is STEP_STATUS_FAILED.
   */
  'error': (_runservice_v1_RunError__Output | null);
  /**
   * The payload the step passed to suspend; set while suspended.
   */
  'suspendPayload': (_google_protobuf_Value__Output | null);
  /**
   * The resume data the step was resumed with; set after a resume (or a TimeTravel
   * with resume_data).
   */
  'resumePayload': (_google_protobuf_Value__Output | null);
  /**
   * When the step body first started.
   */
  'startedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the step finished (success, failure or cancel).
   */
  'endedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the step suspended.
   */
  'suspendedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the step was resumed.
   */
  'resumedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Attempt index of the latest execution, 0 for the first (Mastra's retryCount).
   */
  'attempt': (number);
  /**
   * Loop iteration count (1-based) for the body of a dowhile or dountil loop; 0 otherwise.
   */
  'iteration': (number);
  /**
   * Resume labels the step registered when it suspended.
   */
  'resumeLabels': (string)[];
  /**
   * For a foreach step: one entry per item, in input order.
   */
  'foreachItems': (_runservice_v1_ForeachItem__Output)[];
  /**
   * For a sleep step: when it wakes up.
   */
  'wakeAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * What the body returned after it called suspend, unless nothing (None; Mastra's
   * suspendOutput); set while suspended. Once a resumed step ends, the suspension's
   * suspend_payload, suspended_at and suspend_output are cleared, as in Mastra.
   */
  'suspendOutput': (_google_protobuf_Value__Output | null);
  /**
   * Identifies one execution of the step (Mastra's stepCallId): a new id each time the step
   * begins, whether for the first time, after a resume, or again after a crash or a lease
   * taken over; its retries share it. Pairs a step's start event with its outcome, and tells
   * a body run again apart from a repeated event.
   */
  'callId': (string);
}
