// Original file: runservice/v1/run_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelRequest as _runservice_v1_CancelRequest, CancelRequest__Output as _runservice_v1_CancelRequest__Output } from '../../runservice/v1/CancelRequest';
import type { CancelResponse as _runservice_v1_CancelResponse, CancelResponse__Output as _runservice_v1_CancelResponse__Output } from '../../runservice/v1/CancelResponse';
import type { CreateRunRequest as _runservice_v1_CreateRunRequest, CreateRunRequest__Output as _runservice_v1_CreateRunRequest__Output } from '../../runservice/v1/CreateRunRequest';
import type { CreateRunResponse as _runservice_v1_CreateRunResponse, CreateRunResponse__Output as _runservice_v1_CreateRunResponse__Output } from '../../runservice/v1/CreateRunResponse';
import type { DeleteRunRequest as _runservice_v1_DeleteRunRequest, DeleteRunRequest__Output as _runservice_v1_DeleteRunRequest__Output } from '../../runservice/v1/DeleteRunRequest';
import type { DeleteRunResponse as _runservice_v1_DeleteRunResponse, DeleteRunResponse__Output as _runservice_v1_DeleteRunResponse__Output } from '../../runservice/v1/DeleteRunResponse';
import type { ForkRunRequest as _runservice_v1_ForkRunRequest, ForkRunRequest__Output as _runservice_v1_ForkRunRequest__Output } from '../../runservice/v1/ForkRunRequest';
import type { ForkRunResponse as _runservice_v1_ForkRunResponse, ForkRunResponse__Output as _runservice_v1_ForkRunResponse__Output } from '../../runservice/v1/ForkRunResponse';
import type { GetRunRequest as _runservice_v1_GetRunRequest, GetRunRequest__Output as _runservice_v1_GetRunRequest__Output } from '../../runservice/v1/GetRunRequest';
import type { GetRunResponse as _runservice_v1_GetRunResponse, GetRunResponse__Output as _runservice_v1_GetRunResponse__Output } from '../../runservice/v1/GetRunResponse';
import type { GetWorkflowRequest as _runservice_v1_GetWorkflowRequest, GetWorkflowRequest__Output as _runservice_v1_GetWorkflowRequest__Output } from '../../runservice/v1/GetWorkflowRequest';
import type { GetWorkflowResponse as _runservice_v1_GetWorkflowResponse, GetWorkflowResponse__Output as _runservice_v1_GetWorkflowResponse__Output } from '../../runservice/v1/GetWorkflowResponse';
import type { ListRunsRequest as _runservice_v1_ListRunsRequest, ListRunsRequest__Output as _runservice_v1_ListRunsRequest__Output } from '../../runservice/v1/ListRunsRequest';
import type { ListRunsResponse as _runservice_v1_ListRunsResponse, ListRunsResponse__Output as _runservice_v1_ListRunsResponse__Output } from '../../runservice/v1/ListRunsResponse';
import type { ListWorkflowsRequest as _runservice_v1_ListWorkflowsRequest, ListWorkflowsRequest__Output as _runservice_v1_ListWorkflowsRequest__Output } from '../../runservice/v1/ListWorkflowsRequest';
import type { ListWorkflowsResponse as _runservice_v1_ListWorkflowsResponse, ListWorkflowsResponse__Output as _runservice_v1_ListWorkflowsResponse__Output } from '../../runservice/v1/ListWorkflowsResponse';
import type { RestartRequest as _runservice_v1_RestartRequest, RestartRequest__Output as _runservice_v1_RestartRequest__Output } from '../../runservice/v1/RestartRequest';
import type { RestartResponse as _runservice_v1_RestartResponse, RestartResponse__Output as _runservice_v1_RestartResponse__Output } from '../../runservice/v1/RestartResponse';
import type { ResumeRequest as _runservice_v1_ResumeRequest, ResumeRequest__Output as _runservice_v1_ResumeRequest__Output } from '../../runservice/v1/ResumeRequest';
import type { ResumeResponse as _runservice_v1_ResumeResponse, ResumeResponse__Output as _runservice_v1_ResumeResponse__Output } from '../../runservice/v1/ResumeResponse';
import type { StartRequest as _runservice_v1_StartRequest, StartRequest__Output as _runservice_v1_StartRequest__Output } from '../../runservice/v1/StartRequest';
import type { StartResponse as _runservice_v1_StartResponse, StartResponse__Output as _runservice_v1_StartResponse__Output } from '../../runservice/v1/StartResponse';
import type { StreamRequest as _runservice_v1_StreamRequest, StreamRequest__Output as _runservice_v1_StreamRequest__Output } from '../../runservice/v1/StreamRequest';
import type { StreamResponse as _runservice_v1_StreamResponse, StreamResponse__Output as _runservice_v1_StreamResponse__Output } from '../../runservice/v1/StreamResponse';
import type { TimeTravelRequest as _runservice_v1_TimeTravelRequest, TimeTravelRequest__Output as _runservice_v1_TimeTravelRequest__Output } from '../../runservice/v1/TimeTravelRequest';
import type { TimeTravelResponse as _runservice_v1_TimeTravelResponse, TimeTravelResponse__Output as _runservice_v1_TimeTravelResponse__Output } from '../../runservice/v1/TimeTravelResponse';
import type { WatchRequest as _runservice_v1_WatchRequest, WatchRequest__Output as _runservice_v1_WatchRequest__Output } from '../../runservice/v1/WatchRequest';
import type { WatchResponse as _runservice_v1_WatchResponse, WatchResponse__Output as _runservice_v1_WatchResponse__Output } from '../../runservice/v1/WatchResponse';

/**
 * RunService starts, resumes, cancels and observes durable workflow runs.
 * 
 * Errors are canonical gRPC status codes with a google.rpc.Status in the
 * `grpc-status-details-bin` trailer. It always carries a google.rpc.ErrorInfo
 * (domain "runservice.dev", a stable `reason` such as RUN_NOT_SUSPENDED) and,
 * for invalid data, a google.rpc.BadRequest with field violations.
 */
export interface RunServiceClient extends grpc.Client {
  /**
   * Cancels a run: running steps are stopped. A finished run is returned unchanged.
   */
  Cancel(argument: _runservice_v1_CancelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _runservice_v1_CancelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _runservice_v1_CancelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  Cancel(argument: _runservice_v1_CancelRequest, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Cancels a run: running steps are stopped. A finished run is returned unchanged.
   */
  cancel(argument: _runservice_v1_CancelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _runservice_v1_CancelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _runservice_v1_CancelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  cancel(argument: _runservice_v1_CancelRequest, callback: grpc.requestCallback<_runservice_v1_CancelResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Reserves a run id, optionally bound to a resource id (Mastra `createRun`).
   */
  CreateRun(argument: _runservice_v1_CreateRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  CreateRun(argument: _runservice_v1_CreateRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  CreateRun(argument: _runservice_v1_CreateRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  CreateRun(argument: _runservice_v1_CreateRunRequest, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Reserves a run id, optionally bound to a resource id (Mastra `createRun`).
   */
  createRun(argument: _runservice_v1_CreateRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  createRun(argument: _runservice_v1_CreateRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  createRun(argument: _runservice_v1_CreateRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  createRun(argument: _runservice_v1_CreateRunRequest, callback: grpc.requestCallback<_runservice_v1_CreateRunResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Deletes a run that is not running, with its events.
   */
  DeleteRun(argument: _runservice_v1_DeleteRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  DeleteRun(argument: _runservice_v1_DeleteRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  DeleteRun(argument: _runservice_v1_DeleteRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  DeleteRun(argument: _runservice_v1_DeleteRunRequest, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes a run that is not running, with its events.
   */
  deleteRun(argument: _runservice_v1_DeleteRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  deleteRun(argument: _runservice_v1_DeleteRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  deleteRun(argument: _runservice_v1_DeleteRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  deleteRun(argument: _runservice_v1_DeleteRunRequest, callback: grpc.requestCallback<_runservice_v1_DeleteRunResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Time travel into a new run (DBOS's fork): the original run is left untouched; the
   * new run names it in Run.forked_from_run_id, and ListRuns lists a run's forks with
   * ListRunsRequest.forked_from_run_id. Same preconditions and errors as TimeTravel;
   * ALREADY_EXISTS when new_run_id is taken.
   */
  ForkRun(argument: _runservice_v1_ForkRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  ForkRun(argument: _runservice_v1_ForkRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  ForkRun(argument: _runservice_v1_ForkRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  ForkRun(argument: _runservice_v1_ForkRunRequest, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Time travel into a new run (DBOS's fork): the original run is left untouched; the
   * new run names it in Run.forked_from_run_id, and ListRuns lists a run's forks with
   * ListRunsRequest.forked_from_run_id. Same preconditions and errors as TimeTravel;
   * ALREADY_EXISTS when new_run_id is taken.
   */
  forkRun(argument: _runservice_v1_ForkRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  forkRun(argument: _runservice_v1_ForkRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  forkRun(argument: _runservice_v1_ForkRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  forkRun(argument: _runservice_v1_ForkRunRequest, callback: grpc.requestCallback<_runservice_v1_ForkRunResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Returns a run: status, input, result or error, steps, suspended paths.
   */
  GetRun(argument: _runservice_v1_GetRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _runservice_v1_GetRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _runservice_v1_GetRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  GetRun(argument: _runservice_v1_GetRunRequest, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns a run: status, input, result or error, steps, suspended paths.
   */
  getRun(argument: _runservice_v1_GetRunRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  getRun(argument: _runservice_v1_GetRunRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  getRun(argument: _runservice_v1_GetRunRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  getRun(argument: _runservice_v1_GetRunRequest, callback: grpc.requestCallback<_runservice_v1_GetRunResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Returns one workflow: its steps, step graph and schemas (Mastra `details()`).
   */
  GetWorkflow(argument: _runservice_v1_GetWorkflowRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  GetWorkflow(argument: _runservice_v1_GetWorkflowRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  GetWorkflow(argument: _runservice_v1_GetWorkflowRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  GetWorkflow(argument: _runservice_v1_GetWorkflowRequest, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns one workflow: its steps, step graph and schemas (Mastra `details()`).
   */
  getWorkflow(argument: _runservice_v1_GetWorkflowRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  getWorkflow(argument: _runservice_v1_GetWorkflowRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  getWorkflow(argument: _runservice_v1_GetWorkflowRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  getWorkflow(argument: _runservice_v1_GetWorkflowRequest, callback: grpc.requestCallback<_runservice_v1_GetWorkflowResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists runs, newest first.
   */
  ListRuns(argument: _runservice_v1_ListRunsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  ListRuns(argument: _runservice_v1_ListRunsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  ListRuns(argument: _runservice_v1_ListRunsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  ListRuns(argument: _runservice_v1_ListRunsRequest, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists runs, newest first.
   */
  listRuns(argument: _runservice_v1_ListRunsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  listRuns(argument: _runservice_v1_ListRunsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  listRuns(argument: _runservice_v1_ListRunsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  listRuns(argument: _runservice_v1_ListRunsRequest, callback: grpc.requestCallback<_runservice_v1_ListRunsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists the workflows this server runs.
   */
  ListWorkflows(argument: _runservice_v1_ListWorkflowsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  ListWorkflows(argument: _runservice_v1_ListWorkflowsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  ListWorkflows(argument: _runservice_v1_ListWorkflowsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  ListWorkflows(argument: _runservice_v1_ListWorkflowsRequest, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists the workflows this server runs.
   */
  listWorkflows(argument: _runservice_v1_ListWorkflowsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  listWorkflows(argument: _runservice_v1_ListWorkflowsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  listWorkflows(argument: _runservice_v1_ListWorkflowsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  listWorkflows(argument: _runservice_v1_ListWorkflowsRequest, callback: grpc.requestCallback<_runservice_v1_ListWorkflowsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Re-drives a run that was running when its process died.
   */
  Restart(argument: _runservice_v1_RestartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  Restart(argument: _runservice_v1_RestartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  Restart(argument: _runservice_v1_RestartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  Restart(argument: _runservice_v1_RestartRequest, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Re-drives a run that was running when its process died.
   */
  restart(argument: _runservice_v1_RestartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  restart(argument: _runservice_v1_RestartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  restart(argument: _runservice_v1_RestartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  restart(argument: _runservice_v1_RestartRequest, callback: grpc.requestCallback<_runservice_v1_RestartResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Resumes a suspended step (Mastra `resumeAsync` / `resume`).
   */
  Resume(argument: _runservice_v1_ResumeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  Resume(argument: _runservice_v1_ResumeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  Resume(argument: _runservice_v1_ResumeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  Resume(argument: _runservice_v1_ResumeRequest, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Resumes a suspended step (Mastra `resumeAsync` / `resume`).
   */
  resume(argument: _runservice_v1_ResumeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  resume(argument: _runservice_v1_ResumeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  resume(argument: _runservice_v1_ResumeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  resume(argument: _runservice_v1_ResumeRequest, callback: grpc.requestCallback<_runservice_v1_ResumeResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Starts a run. With `wait` it returns once the run is terminal or suspended
   * (Mastra `startAsync`); without, as soon as the start is durable (`start`).
   */
  Start(argument: _runservice_v1_StartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  Start(argument: _runservice_v1_StartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  Start(argument: _runservice_v1_StartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  Start(argument: _runservice_v1_StartRequest, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Starts a run. With `wait` it returns once the run is terminal or suspended
   * (Mastra `startAsync`); without, as soon as the start is durable (`start`).
   */
  start(argument: _runservice_v1_StartRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  start(argument: _runservice_v1_StartRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  start(argument: _runservice_v1_StartRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  start(argument: _runservice_v1_StartRequest, callback: grpc.requestCallback<_runservice_v1_StartResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Starts, resumes or time travels a run and streams its events until it is terminal or
   * suspended.
   */
  Stream(argument: _runservice_v1_StreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_StreamResponse__Output>;
  Stream(argument: _runservice_v1_StreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_StreamResponse__Output>;
  /**
   * Starts, resumes or time travels a run and streams its events until it is terminal or
   * suspended.
   */
  stream(argument: _runservice_v1_StreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_StreamResponse__Output>;
  stream(argument: _runservice_v1_StreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_StreamResponse__Output>;
  
  /**
   * Re-executes a settled run from a step with new input (Mastra `timeTravel`): the
   * records of the steps that started before it are kept, that step and everything
   * after run again. The run's event log continues (a TIME_TRAVEL event, then
   * WORKFLOW_START); the earlier outcome stays readable in the events before it.
   * A running or waiting run is FAILED_PRECONDITION (reason RUN_STILL_ACTIVE), a
   * pending one RUN_NOT_STARTED, a step that never ran STEP_NOT_REACHED; an unknown
   * step is INVALID_ARGUMENT with a field violation on `step`.
   */
  TimeTravel(argument: _runservice_v1_TimeTravelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  TimeTravel(argument: _runservice_v1_TimeTravelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  TimeTravel(argument: _runservice_v1_TimeTravelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  TimeTravel(argument: _runservice_v1_TimeTravelRequest, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Re-executes a settled run from a step with new input (Mastra `timeTravel`): the
   * records of the steps that started before it are kept, that step and everything
   * after run again. The run's event log continues (a TIME_TRAVEL event, then
   * WORKFLOW_START); the earlier outcome stays readable in the events before it.
   * A running or waiting run is FAILED_PRECONDITION (reason RUN_STILL_ACTIVE), a
   * pending one RUN_NOT_STARTED, a step that never ran STEP_NOT_REACHED; an unknown
   * step is INVALID_ARGUMENT with a field violation on `step`.
   */
  timeTravel(argument: _runservice_v1_TimeTravelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  timeTravel(argument: _runservice_v1_TimeTravelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  timeTravel(argument: _runservice_v1_TimeTravelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  timeTravel(argument: _runservice_v1_TimeTravelRequest, callback: grpc.requestCallback<_runservice_v1_TimeTravelResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Follows a run's events from a cursor until the run is terminal, across
   * suspends and resumes. Only a message with end_of_stream means "done"; a
   * NOT_FOUND (RUN_NOT_FOUND) means the run was deleted, or never existed; any
   * other end means "reconnect with the last sequence you saw".
   */
  Watch(argument: _runservice_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_WatchResponse__Output>;
  Watch(argument: _runservice_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_WatchResponse__Output>;
  /**
   * Follows a run's events from a cursor until the run is terminal, across
   * suspends and resumes. Only a message with end_of_stream means "done"; a
   * NOT_FOUND (RUN_NOT_FOUND) means the run was deleted, or never existed; any
   * other end means "reconnect with the last sequence you saw".
   */
  watch(argument: _runservice_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_WatchResponse__Output>;
  watch(argument: _runservice_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_runservice_v1_WatchResponse__Output>;
  
}

/**
 * RunService starts, resumes, cancels and observes durable workflow runs.
 * 
 * Errors are canonical gRPC status codes with a google.rpc.Status in the
 * `grpc-status-details-bin` trailer. It always carries a google.rpc.ErrorInfo
 * (domain "runservice.dev", a stable `reason` such as RUN_NOT_SUSPENDED) and,
 * for invalid data, a google.rpc.BadRequest with field violations.
 */
export interface RunServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Cancels a run: running steps are stopped. A finished run is returned unchanged.
   */
  Cancel: grpc.handleUnaryCall<_runservice_v1_CancelRequest__Output, _runservice_v1_CancelResponse>;
  
  /**
   * Reserves a run id, optionally bound to a resource id (Mastra `createRun`).
   */
  CreateRun: grpc.handleUnaryCall<_runservice_v1_CreateRunRequest__Output, _runservice_v1_CreateRunResponse>;
  
  /**
   * Deletes a run that is not running, with its events.
   */
  DeleteRun: grpc.handleUnaryCall<_runservice_v1_DeleteRunRequest__Output, _runservice_v1_DeleteRunResponse>;
  
  /**
   * Time travel into a new run (DBOS's fork): the original run is left untouched; the
   * new run names it in Run.forked_from_run_id, and ListRuns lists a run's forks with
   * ListRunsRequest.forked_from_run_id. Same preconditions and errors as TimeTravel;
   * ALREADY_EXISTS when new_run_id is taken.
   */
  ForkRun: grpc.handleUnaryCall<_runservice_v1_ForkRunRequest__Output, _runservice_v1_ForkRunResponse>;
  
  /**
   * Returns a run: status, input, result or error, steps, suspended paths.
   */
  GetRun: grpc.handleUnaryCall<_runservice_v1_GetRunRequest__Output, _runservice_v1_GetRunResponse>;
  
  /**
   * Returns one workflow: its steps, step graph and schemas (Mastra `details()`).
   */
  GetWorkflow: grpc.handleUnaryCall<_runservice_v1_GetWorkflowRequest__Output, _runservice_v1_GetWorkflowResponse>;
  
  /**
   * Lists runs, newest first.
   */
  ListRuns: grpc.handleUnaryCall<_runservice_v1_ListRunsRequest__Output, _runservice_v1_ListRunsResponse>;
  
  /**
   * Lists the workflows this server runs.
   */
  ListWorkflows: grpc.handleUnaryCall<_runservice_v1_ListWorkflowsRequest__Output, _runservice_v1_ListWorkflowsResponse>;
  
  /**
   * Re-drives a run that was running when its process died.
   */
  Restart: grpc.handleUnaryCall<_runservice_v1_RestartRequest__Output, _runservice_v1_RestartResponse>;
  
  /**
   * Resumes a suspended step (Mastra `resumeAsync` / `resume`).
   */
  Resume: grpc.handleUnaryCall<_runservice_v1_ResumeRequest__Output, _runservice_v1_ResumeResponse>;
  
  /**
   * Starts a run. With `wait` it returns once the run is terminal or suspended
   * (Mastra `startAsync`); without, as soon as the start is durable (`start`).
   */
  Start: grpc.handleUnaryCall<_runservice_v1_StartRequest__Output, _runservice_v1_StartResponse>;
  
  /**
   * Starts, resumes or time travels a run and streams its events until it is terminal or
   * suspended.
   */
  Stream: grpc.handleServerStreamingCall<_runservice_v1_StreamRequest__Output, _runservice_v1_StreamResponse>;
  
  /**
   * Re-executes a settled run from a step with new input (Mastra `timeTravel`): the
   * records of the steps that started before it are kept, that step and everything
   * after run again. The run's event log continues (a TIME_TRAVEL event, then
   * WORKFLOW_START); the earlier outcome stays readable in the events before it.
   * A running or waiting run is FAILED_PRECONDITION (reason RUN_STILL_ACTIVE), a
   * pending one RUN_NOT_STARTED, a step that never ran STEP_NOT_REACHED; an unknown
   * step is INVALID_ARGUMENT with a field violation on `step`.
   */
  TimeTravel: grpc.handleUnaryCall<_runservice_v1_TimeTravelRequest__Output, _runservice_v1_TimeTravelResponse>;
  
  /**
   * Follows a run's events from a cursor until the run is terminal, across
   * suspends and resumes. Only a message with end_of_stream means "done"; a
   * NOT_FOUND (RUN_NOT_FOUND) means the run was deleted, or never existed; any
   * other end means "reconnect with the last sequence you saw".
   */
  Watch: grpc.handleServerStreamingCall<_runservice_v1_WatchRequest__Output, _runservice_v1_WatchResponse>;
  
}

export interface RunServiceDefinition extends grpc.ServiceDefinition {
  Cancel: MethodDefinition<_runservice_v1_CancelRequest, _runservice_v1_CancelResponse, _runservice_v1_CancelRequest__Output, _runservice_v1_CancelResponse__Output>
  CreateRun: MethodDefinition<_runservice_v1_CreateRunRequest, _runservice_v1_CreateRunResponse, _runservice_v1_CreateRunRequest__Output, _runservice_v1_CreateRunResponse__Output>
  DeleteRun: MethodDefinition<_runservice_v1_DeleteRunRequest, _runservice_v1_DeleteRunResponse, _runservice_v1_DeleteRunRequest__Output, _runservice_v1_DeleteRunResponse__Output>
  ForkRun: MethodDefinition<_runservice_v1_ForkRunRequest, _runservice_v1_ForkRunResponse, _runservice_v1_ForkRunRequest__Output, _runservice_v1_ForkRunResponse__Output>
  GetRun: MethodDefinition<_runservice_v1_GetRunRequest, _runservice_v1_GetRunResponse, _runservice_v1_GetRunRequest__Output, _runservice_v1_GetRunResponse__Output>
  GetWorkflow: MethodDefinition<_runservice_v1_GetWorkflowRequest, _runservice_v1_GetWorkflowResponse, _runservice_v1_GetWorkflowRequest__Output, _runservice_v1_GetWorkflowResponse__Output>
  ListRuns: MethodDefinition<_runservice_v1_ListRunsRequest, _runservice_v1_ListRunsResponse, _runservice_v1_ListRunsRequest__Output, _runservice_v1_ListRunsResponse__Output>
  ListWorkflows: MethodDefinition<_runservice_v1_ListWorkflowsRequest, _runservice_v1_ListWorkflowsResponse, _runservice_v1_ListWorkflowsRequest__Output, _runservice_v1_ListWorkflowsResponse__Output>
  Restart: MethodDefinition<_runservice_v1_RestartRequest, _runservice_v1_RestartResponse, _runservice_v1_RestartRequest__Output, _runservice_v1_RestartResponse__Output>
  Resume: MethodDefinition<_runservice_v1_ResumeRequest, _runservice_v1_ResumeResponse, _runservice_v1_ResumeRequest__Output, _runservice_v1_ResumeResponse__Output>
  Start: MethodDefinition<_runservice_v1_StartRequest, _runservice_v1_StartResponse, _runservice_v1_StartRequest__Output, _runservice_v1_StartResponse__Output>
  Stream: MethodDefinition<_runservice_v1_StreamRequest, _runservice_v1_StreamResponse, _runservice_v1_StreamRequest__Output, _runservice_v1_StreamResponse__Output>
  TimeTravel: MethodDefinition<_runservice_v1_TimeTravelRequest, _runservice_v1_TimeTravelResponse, _runservice_v1_TimeTravelRequest__Output, _runservice_v1_TimeTravelResponse__Output>
  Watch: MethodDefinition<_runservice_v1_WatchRequest, _runservice_v1_WatchResponse, _runservice_v1_WatchRequest__Output, _runservice_v1_WatchResponse__Output>
}
