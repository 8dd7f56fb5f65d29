// Original file: runservice/v1/run_service.proto

import type { StartRequest as _runservice_v1_StartRequest, StartRequest__Output as _runservice_v1_StartRequest__Output } from '../../runservice/v1/StartRequest';
import type { ResumeRequest as _runservice_v1_ResumeRequest, ResumeRequest__Output as _runservice_v1_ResumeRequest__Output } from '../../runservice/v1/ResumeRequest';
import type { TimeTravelRequest as _runservice_v1_TimeTravelRequest, TimeTravelRequest__Output as _runservice_v1_TimeTravelRequest__Output } from '../../runservice/v1/TimeTravelRequest';

/**
 * Request of Stream: a Start, a Resume or a TimeTravel whose events are streamed back.
 * The stream sends that execution's events, from its first (WORKFLOW_START; TIME_TRAVEL
 * for a time travel) to the WORKFLOW_FINISH that settles it; a retry with the same
 * request_id sends the same ones, wherever the run is by then.
 */
export interface StreamRequest {
  /**
   * Start a run (its `wait` is ignored).
   */
  'start'?: (_runservice_v1_StartRequest | null);
  /**
   * Resume a run (its `wait` is ignored).
   */
  'resume'?: (_runservice_v1_ResumeRequest | null);
  /**
   * Time travel a run (Mastra's `timeTravelStream`; its `wait` is ignored).
   */
  'timeTravel'?: (_runservice_v1_TimeTravelRequest | null);
  /**
   * What to do before streaming.
   */
  'action'?: "start"|"resume"|"timeTravel";
}

/**
 * Request of Stream: a Start, a Resume or a TimeTravel whose events are streamed back.
 * The stream sends that execution's events, from its first (WORKFLOW_START; TIME_TRAVEL
 * for a time travel) to the WORKFLOW_FINISH that settles it; a retry with the same
 * request_id sends the same ones, wherever the run is by then.
 */
export interface StreamRequest__Output {
  /**
   * Start a run (its `wait` is ignored).
   */
  'start'?: (_runservice_v1_StartRequest__Output | null);
  /**
   * Resume a run (its `wait` is ignored).
   */
  'resume'?: (_runservice_v1_ResumeRequest__Output | null);
  /**
   * Time travel a run (Mastra's `timeTravelStream`; its `wait` is ignored).
   */
  'timeTravel'?: (_runservice_v1_TimeTravelRequest__Output | null);
  /**
   * What to do before streaming.
   */
  'action'?: "start"|"resume"|"timeTravel";
}
