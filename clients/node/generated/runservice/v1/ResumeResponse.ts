// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of Resume.
 */
export interface ResumeResponse {
  /**
   * The run after the resume (see ResumeRequest.wait).
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * Response of Resume.
 */
export interface ResumeResponse__Output {
  /**
   * The run after the resume (see ResumeRequest.wait).
   */
  'run': (_runservice_v1_Run__Output | null);
}
