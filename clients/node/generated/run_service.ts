import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';
import type { CancelRequest as _runservice_v1_CancelRequest, CancelRequest__Output as _runservice_v1_CancelRequest__Output } from './runservice/v1/CancelRequest';
import type { CancelResponse as _runservice_v1_CancelResponse, CancelResponse__Output as _runservice_v1_CancelResponse__Output } from './runservice/v1/CancelResponse';
import type { CreateRunRequest as _runservice_v1_CreateRunRequest, CreateRunRequest__Output as _runservice_v1_CreateRunRequest__Output } from './runservice/v1/CreateRunRequest';
import type { CreateRunResponse as _runservice_v1_CreateRunResponse, CreateRunResponse__Output as _runservice_v1_CreateRunResponse__Output } from './runservice/v1/CreateRunResponse';
import type { DeleteRunRequest as _runservice_v1_DeleteRunRequest, DeleteRunRequest__Output as _runservice_v1_DeleteRunRequest__Output } from './runservice/v1/DeleteRunRequest';
import type { DeleteRunResponse as _runservice_v1_DeleteRunResponse, DeleteRunResponse__Output as _runservice_v1_DeleteRunResponse__Output } from './runservice/v1/DeleteRunResponse';
import type { ForeachItem as _runservice_v1_ForeachItem, ForeachItem__Output as _runservice_v1_ForeachItem__Output } from './runservice/v1/ForeachItem';
import type { ForkRunRequest as _runservice_v1_ForkRunRequest, ForkRunRequest__Output as _runservice_v1_ForkRunRequest__Output } from './runservice/v1/ForkRunRequest';
import type { ForkRunResponse as _runservice_v1_ForkRunResponse, ForkRunResponse__Output as _runservice_v1_ForkRunResponse__Output } from './runservice/v1/ForkRunResponse';
import type { GetRunRequest as _runservice_v1_GetRunRequest, GetRunRequest__Output as _runservice_v1_GetRunRequest__Output } from './runservice/v1/GetRunRequest';
import type { GetRunResponse as _runservice_v1_GetRunResponse, GetRunResponse__Output as _runservice_v1_GetRunResponse__Output } from './runservice/v1/GetRunResponse';
import type { GetWorkflowRequest as _runservice_v1_GetWorkflowRequest, GetWorkflowRequest__Output as _runservice_v1_GetWorkflowRequest__Output } from './runservice/v1/GetWorkflowRequest';
import type { GetWorkflowResponse as _runservice_v1_GetWorkflowResponse, GetWorkflowResponse__Output as _runservice_v1_GetWorkflowResponse__Output } from './runservice/v1/GetWorkflowResponse';
import type { ListRunsRequest as _runservice_v1_ListRunsRequest, ListRunsRequest__Output as _runservice_v1_ListRunsRequest__Output } from './runservice/v1/ListRunsRequest';
import type { ListRunsResponse as _runservice_v1_ListRunsResponse, ListRunsResponse__Output as _runservice_v1_ListRunsResponse__Output } from './runservice/v1/ListRunsResponse';
import type { ListWorkflowsRequest as _runservice_v1_ListWorkflowsRequest, ListWorkflowsRequest__Output as _runservice_v1_ListWorkflowsRequest__Output } from './runservice/v1/ListWorkflowsRequest';
import type { ListWorkflowsResponse as _runservice_v1_ListWorkflowsResponse, ListWorkflowsResponse__Output as _runservice_v1_ListWorkflowsResponse__Output } from './runservice/v1/ListWorkflowsResponse';
import type { RestartRequest as _runservice_v1_RestartRequest, RestartRequest__Output as _runservice_v1_RestartRequest__Output } from './runservice/v1/RestartRequest';
import type { RestartResponse as _runservice_v1_RestartResponse, RestartResponse__Output as _runservice_v1_RestartResponse__Output } from './runservice/v1/RestartResponse';
import type { ResumeLabelTarget as _runservice_v1_ResumeLabelTarget, ResumeLabelTarget__Output as _runservice_v1_ResumeLabelTarget__Output } from './runservice/v1/ResumeLabelTarget';
import type { ResumeRequest as _runservice_v1_ResumeRequest, ResumeRequest__Output as _runservice_v1_ResumeRequest__Output } from './runservice/v1/ResumeRequest';
import type { ResumeResponse as _runservice_v1_ResumeResponse, ResumeResponse__Output as _runservice_v1_ResumeResponse__Output } from './runservice/v1/ResumeResponse';
import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from './runservice/v1/Run';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from './runservice/v1/RunError';
import type { RunEvent as _runservice_v1_RunEvent, RunEvent__Output as _runservice_v1_RunEvent__Output } from './runservice/v1/RunEvent';
import type { RunServiceClient as _runservice_v1_RunServiceClient, RunServiceDefinition as _runservice_v1_RunServiceDefinition } from './runservice/v1/RunService';
import type { StartRequest as _runservice_v1_StartRequest, StartRequest__Output as _runservice_v1_StartRequest__Output } from './runservice/v1/StartRequest';
import type { StartResponse as _runservice_v1_StartResponse, StartResponse__Output as _runservice_v1_StartResponse__Output } from './runservice/v1/StartResponse';
import type { StepGraphNode as _runservice_v1_StepGraphNode, StepGraphNode__Output as _runservice_v1_StepGraphNode__Output } from './runservice/v1/StepGraphNode';
import type { StepInfo as _runservice_v1_StepInfo, StepInfo__Output as _runservice_v1_StepInfo__Output } from './runservice/v1/StepInfo';
import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from './runservice/v1/StepPath';
import type { StepProgress as _runservice_v1_StepProgress, StepProgress__Output as _runservice_v1_StepProgress__Output } from './runservice/v1/StepProgress';
import type { StepRecord as _runservice_v1_StepRecord, StepRecord__Output as _runservice_v1_StepRecord__Output } from './runservice/v1/StepRecord';
import type { StreamRequest as _runservice_v1_StreamRequest, StreamRequest__Output as _runservice_v1_StreamRequest__Output } from './runservice/v1/StreamRequest';
import type { StreamResponse as _runservice_v1_StreamResponse, StreamResponse__Output as _runservice_v1_StreamResponse__Output } from './runservice/v1/StreamResponse';
import type { TimeTravelRequest as _runservice_v1_TimeTravelRequest, TimeTravelRequest__Output as _runservice_v1_TimeTravelRequest__Output } from './runservice/v1/TimeTravelRequest';
import type { TimeTravelResponse as _runservice_v1_TimeTravelResponse, TimeTravelResponse__Output as _runservice_v1_TimeTravelResponse__Output } from './runservice/v1/TimeTravelResponse';
import type { TracingOptions as _runservice_v1_TracingOptions, TracingOptions__Output as _runservice_v1_TracingOptions__Output } from './runservice/v1/TracingOptions';
import type { WatchRequest as _runservice_v1_WatchRequest, WatchRequest__Output as _runservice_v1_WatchRequest__Output } from './runservice/v1/WatchRequest';
import type { WatchResponse as _runservice_v1_WatchResponse, WatchResponse__Output as _runservice_v1_WatchResponse__Output } from './runservice/v1/WatchResponse';
import type { Workflow as _runservice_v1_Workflow, Workflow__Output as _runservice_v1_Workflow__Output } from './runservice/v1/Workflow';
import type { WorkflowState as _runservice_v1_WorkflowState, WorkflowState__Output as _runservice_v1_WorkflowState__Output } from './runservice/v1/WorkflowState';
import type { WorkflowVersion as _runservice_v1_WorkflowVersion, WorkflowVersion__Output as _runservice_v1_WorkflowVersion__Output } from './runservice/v1/WorkflowVersion';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      ListValue: MessageTypeDefinition<_google_protobuf_ListValue, _google_protobuf_ListValue__Output>
      NullValue: EnumTypeDefinition
      Struct: MessageTypeDefinition<_google_protobuf_Struct, _google_protobuf_Struct__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
      Value: MessageTypeDefinition<_google_protobuf_Value, _google_protobuf_Value__Output>
    }
  }
  runservice: {
    v1: {
      CancelRequest: MessageTypeDefinition<_runservice_v1_CancelRequest, _runservice_v1_CancelRequest__Output>
      CancelResponse: MessageTypeDefinition<_runservice_v1_CancelResponse, _runservice_v1_CancelResponse__Output>
      CreateRunRequest: MessageTypeDefinition<_runservice_v1_CreateRunRequest, _runservice_v1_CreateRunRequest__Output>
      CreateRunResponse: MessageTypeDefinition<_runservice_v1_CreateRunResponse, _runservice_v1_CreateRunResponse__Output>
      DeleteRunRequest: MessageTypeDefinition<_runservice_v1_DeleteRunRequest, _runservice_v1_DeleteRunRequest__Output>
      DeleteRunResponse: MessageTypeDefinition<_runservice_v1_DeleteRunResponse, _runservice_v1_DeleteRunResponse__Output>
      ExecutionCause: EnumTypeDefinition
      ForeachItem: MessageTypeDefinition<_runservice_v1_ForeachItem, _runservice_v1_ForeachItem__Output>
      ForkRunRequest: MessageTypeDefinition<_runservice_v1_ForkRunRequest, _runservice_v1_ForkRunRequest__Output>
      ForkRunResponse: MessageTypeDefinition<_runservice_v1_ForkRunResponse, _runservice_v1_ForkRunResponse__Output>
      GetRunRequest: MessageTypeDefinition<_runservice_v1_GetRunRequest, _runservice_v1_GetRunRequest__Output>
      GetRunResponse: MessageTypeDefinition<_runservice_v1_GetRunResponse, _runservice_v1_GetRunResponse__Output>
      GetWorkflowRequest: MessageTypeDefinition<_runservice_v1_GetWorkflowRequest, _runservice_v1_GetWorkflowRequest__Output>
      GetWorkflowResponse: MessageTypeDefinition<_runservice_v1_GetWorkflowResponse, _runservice_v1_GetWorkflowResponse__Output>
      ListRunsRequest: MessageTypeDefinition<_runservice_v1_ListRunsRequest, _runservice_v1_ListRunsRequest__Output>
      ListRunsResponse: MessageTypeDefinition<_runservice_v1_ListRunsResponse, _runservice_v1_ListRunsResponse__Output>
      ListWorkflowsRequest: MessageTypeDefinition<_runservice_v1_ListWorkflowsRequest, _runservice_v1_ListWorkflowsRequest__Output>
      ListWorkflowsResponse: MessageTypeDefinition<_runservice_v1_ListWorkflowsResponse, _runservice_v1_ListWorkflowsResponse__Output>
      LoopKind: EnumTypeDefinition
      RestartRequest: MessageTypeDefinition<_runservice_v1_RestartRequest, _runservice_v1_RestartRequest__Output>
      RestartResponse: MessageTypeDefinition<_runservice_v1_RestartResponse, _runservice_v1_RestartResponse__Output>
      ResumeLabelTarget: MessageTypeDefinition<_runservice_v1_ResumeLabelTarget, _runservice_v1_ResumeLabelTarget__Output>
      ResumeRequest: MessageTypeDefinition<_runservice_v1_ResumeRequest, _runservice_v1_ResumeRequest__Output>
      ResumeResponse: MessageTypeDefinition<_runservice_v1_ResumeResponse, _runservice_v1_ResumeResponse__Output>
      Run: MessageTypeDefinition<_runservice_v1_Run, _runservice_v1_Run__Output>
      RunError: MessageTypeDefinition<_runservice_v1_RunError, _runservice_v1_RunError__Output>
      RunEvent: MessageTypeDefinition<_runservice_v1_RunEvent, _runservice_v1_RunEvent__Output>
      RunEventType: EnumTypeDefinition
      /**
       * RunService starts, resumes, cancels and observes durable workflow runs.
       * 
       * Errors are canonical gRPC status codes with a google.rpc.Status in the
       * `grpc-status-details-bin` trailer. It always carries a google.rpc.ErrorInfo
       * (domain "runservice.dev", a stable `reason` such as RUN_NOT_SUSPENDED) and,
       * for invalid data, a google.rpc.BadRequest with field violations.
       */
      RunService: SubtypeConstructor<typeof grpc.Client, _runservice_v1_RunServiceClient> & { service: _runservice_v1_RunServiceDefinition }
      RunStatus: EnumTypeDefinition
      RunView: EnumTypeDefinition
      StartRequest: MessageTypeDefinition<_runservice_v1_StartRequest, _runservice_v1_StartRequest__Output>
      StartResponse: MessageTypeDefinition<_runservice_v1_StartResponse, _runservice_v1_StartResponse__Output>
      StepGraphNode: MessageTypeDefinition<_runservice_v1_StepGraphNode, _runservice_v1_StepGraphNode__Output>
      StepGraphNodeKind: EnumTypeDefinition
      StepInfo: MessageTypeDefinition<_runservice_v1_StepInfo, _runservice_v1_StepInfo__Output>
      StepPath: MessageTypeDefinition<_runservice_v1_StepPath, _runservice_v1_StepPath__Output>
      StepProgress: MessageTypeDefinition<_runservice_v1_StepProgress, _runservice_v1_StepProgress__Output>
      StepRecord: MessageTypeDefinition<_runservice_v1_StepRecord, _runservice_v1_StepRecord__Output>
      StepStatus: EnumTypeDefinition
      StreamRequest: MessageTypeDefinition<_runservice_v1_StreamRequest, _runservice_v1_StreamRequest__Output>
      StreamResponse: MessageTypeDefinition<_runservice_v1_StreamResponse, _runservice_v1_StreamResponse__Output>
      TimeTravelRequest: MessageTypeDefinition<_runservice_v1_TimeTravelRequest, _runservice_v1_TimeTravelRequest__Output>
      TimeTravelResponse: MessageTypeDefinition<_runservice_v1_TimeTravelResponse, _runservice_v1_TimeTravelResponse__Output>
      TracingOptions: MessageTypeDefinition<_runservice_v1_TracingOptions, _runservice_v1_TracingOptions__Output>
      WatchRequest: MessageTypeDefinition<_runservice_v1_WatchRequest, _runservice_v1_WatchRequest__Output>
      WatchResponse: MessageTypeDefinition<_runservice_v1_WatchResponse, _runservice_v1_WatchResponse__Output>
      Workflow: MessageTypeDefinition<_runservice_v1_Workflow, _runservice_v1_Workflow__Output>
      WorkflowState: MessageTypeDefinition<_runservice_v1_WorkflowState, _runservice_v1_WorkflowState__Output>
      WorkflowVersion: MessageTypeDefinition<_runservice_v1_WorkflowVersion, _runservice_v1_WorkflowVersion__Output>
    }
  }
}

