// Original file: runservice/v1/run_service.proto

import type { Workflow as _runservice_v1_Workflow, Workflow__Output as _runservice_v1_Workflow__Output } from '../../runservice/v1/Workflow';

/**
 * Response of GetWorkflow.
 */
export interface GetWorkflowResponse {
  /**
   * The workflow.
   */
  'workflow'?: (_runservice_v1_Workflow | null);
}

/**
 * Response of GetWorkflow.
 */
export interface GetWorkflowResponse__Output {
  /**
   * The workflow.
   */
  'workflow': (_runservice_v1_Workflow__Output | null);
}
