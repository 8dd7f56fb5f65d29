// Original file: runservice/v1/run_service.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Request of Watch.
 */
export interface WatchRequest {
  /**
   * Required. The run to follow.
   */
  'runId'?: (string);
  /**
   * Exclusive cursor: events with a larger sequence are sent. 0 sends them all.
   */
  'afterSequence'?: (number | string | Long);
  /**
   * Send the current run first (in WatchResponse.run), before any event.
   */
  'includeRun'?: (boolean);
  /**
   * Attach the workflow state as of each event (Mastra's watch record).
   */
  'includeWorkflowState'?: (boolean);
}

/**
 * Request of Watch.
 */
export interface WatchRequest__Output {
  /**
   * Required. The run to follow.
   */
  'runId': (string);
  /**
   * Exclusive cursor: events with a larger sequence are sent. 0 sends them all.
   */
  'afterSequence': (string);
  /**
   * Send the current run first (in WatchResponse.run), before any event.
   */
  'includeRun': (boolean);
  /**
   * Attach the workflow state as of each event (Mastra's watch record).
   */
  'includeWorkflowState': (boolean);
}
