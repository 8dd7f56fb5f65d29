// Original file: runservice/v1/run_service.proto

import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * Response of ListRuns.
 */
export interface ListRunsResponse {
  /**
   * Runs, newest first, without step records.
   */
  'runs'?: (_runservice_v1_Run)[];
  /**
   * Token for the next page; empty on the last page.
   */
  'nextPageToken'?: (string);
}

/**
 * Response of ListRuns.
 */
export interface ListRunsResponse__Output {
  /**
   * Runs, newest first, without step records.
   */
  'runs': (_runservice_v1_Run__Output)[];
  /**
   * Token for the next page; empty on the last page.
   */
  'nextPageToken': (string);
}
