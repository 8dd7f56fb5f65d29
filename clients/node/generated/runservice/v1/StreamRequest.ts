// Original file: runservice/v1/run_service.proto

import type { StartRequest as _runservice_v1_StartRequest, StartRequest__Output as _runservice_v1_StartRequest__Output } from '../../runservice/v1/StartRequest';
import type { ResumeRequest as _runservice_v1_ResumeRequest, ResumeRequest__Output as _runservice_v1_ResumeRequest__Output } from '../../runservice/v1/ResumeRequest';

/**
 * Request of Stream: a Start or a Resume whose events are streamed back.
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
   * What to do before streaming.
   */
  'action'?: "start"|"resume";
}

/**
 * Request of Stream: a Start or a Resume whose events are streamed back.
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
   * What to do before streaming.
   */
  'action'?: "start"|"resume";
}
