// Original file: runservice/v1/run_service.proto

import type { RunStatus as _runservice_v1_RunStatus, RunStatus__Output as _runservice_v1_RunStatus__Output } from '../../runservice/v1/RunStatus';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { RunView as _runservice_v1_RunView, RunView__Output as _runservice_v1_RunView__Output } from '../../runservice/v1/RunView';

/**
 * Request of ListRuns.
 */
export interface ListRunsRequest {
  /**
   * Optional. Only runs of this workflow.
   */
  'workflowId'?: (string);
  /**
   * Optional. Only runs with one of these statuses.
   */
  'statuses'?: (_runservice_v1_RunStatus)[];
  /**
   * Optional. Only runs of this resource.
   */
  'resourceId'?: (string);
  /**
   * Optional. Only runs created at or after this time.
   */
  'fromTime'?: (_google_protobuf_Timestamp | null);
  /**
   * Optional. Only runs created before this time.
   */
  'toTime'?: (_google_protobuf_Timestamp | null);
  /**
   * Maximum runs to return; 0 means 50, values above 1000 are treated as 1000.
   */
  'pageSize'?: (number);
  /**
   * Token from a previous ListRunsResponse; the other fields must not change.
   */
  'pageToken'?: (string);
  /**
   * How much of each run to return; unspecified means RUN_VIEW_SUMMARY. Listings
   * never carry step records or state: use GetRun for those.
   */
  'view'?: (_runservice_v1_RunView);
  /**
   * Optional. Only runs that started on this version of the workflow (needs
   * workflow_id). With statuses RUNNING, WAITING and SUSPENDED it lists the runs
   * that still need a version before it is retired.
   */
  'definitionVersion'?: (string);
  /**
   * Optional. Only the forks of this run (ForkRun).
   */
  'forkedFromRunId'?: (string);
}

/**
 * Request of ListRuns.
 */
export interface ListRunsRequest__Output {
  /**
   * Optional. Only runs of this workflow.
   */
  'workflowId': (string);
  /**
   * Optional. Only runs with one of these statuses.
   */
  'statuses': (_runservice_v1_RunStatus__Output)[];
  /**
   * Optional. Only runs of this resource.
   */
  'resourceId': (string);
  /**
   * Optional. Only runs created at or after this time.
   */
  'fromTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * Optional. Only runs created before this time.
   */
  'toTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * Maximum runs to return; 0 means 50, values above 1000 are treated as 1000.
   */
  'pageSize': (number);
  /**
   * Token from a previous ListRunsResponse; the other fields must not change.
   */
  'pageToken': (string);
  /**
   * How much of each run to return; unspecified means RUN_VIEW_SUMMARY. Listings
   * never carry step records or state: use GetRun for those.
   */
  'view': (_runservice_v1_RunView__Output);
  /**
   * Optional. Only runs that started on this version of the workflow (needs
   * workflow_id). With statuses RUNNING, WAITING and SUSPENDED it lists the runs
   * that still need a version before it is retired.
   */
  'definitionVersion': (string);
  /**
   * Optional. Only the forks of this run (ForkRun).
   */
  'forkedFromRunId': (string);
}
