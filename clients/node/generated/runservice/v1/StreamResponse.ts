// Original file: runservice/v1/run_service.proto

import type { RunEvent as _runservice_v1_RunEvent, RunEvent__Output as _runservice_v1_RunEvent__Output } from '../../runservice/v1/RunEvent';
import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from '../../runservice/v1/Run';

/**
 * One message of a Stream.
 */
export interface StreamResponse {
  /**
   * The run being streamed (useful when the server generated its id).
   */
  'runId'?: (string);
  /**
   * Events, contiguous and in sequence order. Empty in a heartbeat.
   */
  'events'?: (_runservice_v1_RunEvent)[];
  /**
   * True on the last message, sent after the WORKFLOW_FINISH event.
   */
  'endOfStream'?: (boolean);
  /**
   * The run at the end of the stream; set only on the end_of_stream message.
   */
  'run'?: (_runservice_v1_Run | null);
}

/**
 * One message of a Stream.
 */
export interface StreamResponse__Output {
  /**
   * The run being streamed (useful when the server generated its id).
   */
  'runId': (string);
  /**
   * Events, contiguous and in sequence order. Empty in a heartbeat.
   */
  'events': (_runservice_v1_RunEvent__Output)[];
  /**
   * True on the last message, sent after the WORKFLOW_FINISH event.
   */
  'endOfStream': (boolean);
  /**
   * The run at the end of the stream; set only on the end_of_stream message.
   */
  'run': (_runservice_v1_Run__Output | null);
}
