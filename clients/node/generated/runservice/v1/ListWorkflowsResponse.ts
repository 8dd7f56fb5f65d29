// Original file: runservice/v1/run_service.proto

import type { Workflow as _runservice_v1_Workflow, Workflow__Output as _runservice_v1_Workflow__Output } from '../../runservice/v1/Workflow';

/**
 * Response of ListWorkflows.
 */
export interface ListWorkflowsResponse {
  /**
   * Every workflow, sorted by id. Step graphs and schemas are included.
   */
  'workflows'?: (_runservice_v1_Workflow)[];
}

/**
 * Response of ListWorkflows.
 */
export interface ListWorkflowsResponse__Output {
  /**
   * Every workflow, sorted by id. Step graphs and schemas are included.
   */
  'workflows': (_runservice_v1_Workflow__Output)[];
}
