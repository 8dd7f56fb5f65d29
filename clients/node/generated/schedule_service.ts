import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';
import type { ForeachItem as _runservice_v1_ForeachItem, ForeachItem__Output as _runservice_v1_ForeachItem__Output } from './runservice/v1/ForeachItem';
import type { GetScheduleRequest as _runservice_v1_GetScheduleRequest, GetScheduleRequest__Output as _runservice_v1_GetScheduleRequest__Output } from './runservice/v1/GetScheduleRequest';
import type { GetScheduleResponse as _runservice_v1_GetScheduleResponse, GetScheduleResponse__Output as _runservice_v1_GetScheduleResponse__Output } from './runservice/v1/GetScheduleResponse';
import type { ListSchedulesRequest as _runservice_v1_ListSchedulesRequest, ListSchedulesRequest__Output as _runservice_v1_ListSchedulesRequest__Output } from './runservice/v1/ListSchedulesRequest';
import type { ListSchedulesResponse as _runservice_v1_ListSchedulesResponse, ListSchedulesResponse__Output as _runservice_v1_ListSchedulesResponse__Output } from './runservice/v1/ListSchedulesResponse';
import type { PauseScheduleRequest as _runservice_v1_PauseScheduleRequest, PauseScheduleRequest__Output as _runservice_v1_PauseScheduleRequest__Output } from './runservice/v1/PauseScheduleRequest';
import type { PauseScheduleResponse as _runservice_v1_PauseScheduleResponse, PauseScheduleResponse__Output as _runservice_v1_PauseScheduleResponse__Output } from './runservice/v1/PauseScheduleResponse';
import type { ResumeLabelTarget as _runservice_v1_ResumeLabelTarget, ResumeLabelTarget__Output as _runservice_v1_ResumeLabelTarget__Output } from './runservice/v1/ResumeLabelTarget';
import type { ResumeScheduleRequest as _runservice_v1_ResumeScheduleRequest, ResumeScheduleRequest__Output as _runservice_v1_ResumeScheduleRequest__Output } from './runservice/v1/ResumeScheduleRequest';
import type { ResumeScheduleResponse as _runservice_v1_ResumeScheduleResponse, ResumeScheduleResponse__Output as _runservice_v1_ResumeScheduleResponse__Output } from './runservice/v1/ResumeScheduleResponse';
import type { Run as _runservice_v1_Run, Run__Output as _runservice_v1_Run__Output } from './runservice/v1/Run';
import type { RunError as _runservice_v1_RunError, RunError__Output as _runservice_v1_RunError__Output } from './runservice/v1/RunError';
import type { RunEvent as _runservice_v1_RunEvent, RunEvent__Output as _runservice_v1_RunEvent__Output } from './runservice/v1/RunEvent';
import type { Schedule as _runservice_v1_Schedule, Schedule__Output as _runservice_v1_Schedule__Output } from './runservice/v1/Schedule';
import type { ScheduleServiceClient as _runservice_v1_ScheduleServiceClient, ScheduleServiceDefinition as _runservice_v1_ScheduleServiceDefinition } from './runservice/v1/ScheduleService';
import type { StepGraphNode as _runservice_v1_StepGraphNode, StepGraphNode__Output as _runservice_v1_StepGraphNode__Output } from './runservice/v1/StepGraphNode';
import type { StepInfo as _runservice_v1_StepInfo, StepInfo__Output as _runservice_v1_StepInfo__Output } from './runservice/v1/StepInfo';
import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from './runservice/v1/StepPath';
import type { StepProgress as _runservice_v1_StepProgress, StepProgress__Output as _runservice_v1_StepProgress__Output } from './runservice/v1/StepProgress';
import type { StepRecord as _runservice_v1_StepRecord, StepRecord__Output as _runservice_v1_StepRecord__Output } from './runservice/v1/StepRecord';
import type { TriggerScheduleRequest as _runservice_v1_TriggerScheduleRequest, TriggerScheduleRequest__Output as _runservice_v1_TriggerScheduleRequest__Output } from './runservice/v1/TriggerScheduleRequest';
import type { TriggerScheduleResponse as _runservice_v1_TriggerScheduleResponse, TriggerScheduleResponse__Output as _runservice_v1_TriggerScheduleResponse__Output } from './runservice/v1/TriggerScheduleResponse';
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
      ExecutionCause: EnumTypeDefinition
      ForeachItem: MessageTypeDefinition<_runservice_v1_ForeachItem, _runservice_v1_ForeachItem__Output>
      GetScheduleRequest: MessageTypeDefinition<_runservice_v1_GetScheduleRequest, _runservice_v1_GetScheduleRequest__Output>
      GetScheduleResponse: MessageTypeDefinition<_runservice_v1_GetScheduleResponse, _runservice_v1_GetScheduleResponse__Output>
      ListSchedulesRequest: MessageTypeDefinition<_runservice_v1_ListSchedulesRequest, _runservice_v1_ListSchedulesRequest__Output>
      ListSchedulesResponse: MessageTypeDefinition<_runservice_v1_ListSchedulesResponse, _runservice_v1_ListSchedulesResponse__Output>
      LoopKind: EnumTypeDefinition
      PauseScheduleRequest: MessageTypeDefinition<_runservice_v1_PauseScheduleRequest, _runservice_v1_PauseScheduleRequest__Output>
      PauseScheduleResponse: MessageTypeDefinition<_runservice_v1_PauseScheduleResponse, _runservice_v1_PauseScheduleResponse__Output>
      ResumeLabelTarget: MessageTypeDefinition<_runservice_v1_ResumeLabelTarget, _runservice_v1_ResumeLabelTarget__Output>
      ResumeScheduleRequest: MessageTypeDefinition<_runservice_v1_ResumeScheduleRequest, _runservice_v1_ResumeScheduleRequest__Output>
      ResumeScheduleResponse: MessageTypeDefinition<_runservice_v1_ResumeScheduleResponse, _runservice_v1_ResumeScheduleResponse__Output>
      Run: MessageTypeDefinition<_runservice_v1_Run, _runservice_v1_Run__Output>
      RunError: MessageTypeDefinition<_runservice_v1_RunError, _runservice_v1_RunError__Output>
      RunEvent: MessageTypeDefinition<_runservice_v1_RunEvent, _runservice_v1_RunEvent__Output>
      RunEventType: EnumTypeDefinition
      RunStatus: EnumTypeDefinition
      Schedule: MessageTypeDefinition<_runservice_v1_Schedule, _runservice_v1_Schedule__Output>
      ScheduleMissedPolicy: EnumTypeDefinition
      ScheduleOverlapPolicy: EnumTypeDefinition
      /**
       * ScheduleService lists, pauses, resumes and triggers the cron schedules that
       * start workflow runs. Schedules are declared by the workflows' code or by the
       * server's configuration, never created through this service.
       * 
       * Each tick fires exactly once across restarts and replicas: it is claimed in
       * the database in the transaction that creates its run. A run started by a
       * schedule shows the schedule and the tick (Run.schedule_id, Run.schedule_tick_time).
       * 
       * Errors follow RunService: canonical codes with a google.rpc.ErrorInfo
       * (domain "runservice.dev"); an unknown schedule is NOT_FOUND with reason
       * SCHEDULE_NOT_FOUND.
       */
      ScheduleService: SubtypeConstructor<typeof grpc.Client, _runservice_v1_ScheduleServiceClient> & { service: _runservice_v1_ScheduleServiceDefinition }
      StepGraphNode: MessageTypeDefinition<_runservice_v1_StepGraphNode, _runservice_v1_StepGraphNode__Output>
      StepGraphNodeKind: EnumTypeDefinition
      StepInfo: MessageTypeDefinition<_runservice_v1_StepInfo, _runservice_v1_StepInfo__Output>
      StepPath: MessageTypeDefinition<_runservice_v1_StepPath, _runservice_v1_StepPath__Output>
      StepProgress: MessageTypeDefinition<_runservice_v1_StepProgress, _runservice_v1_StepProgress__Output>
      StepRecord: MessageTypeDefinition<_runservice_v1_StepRecord, _runservice_v1_StepRecord__Output>
      StepStatus: EnumTypeDefinition
      TriggerOutcome: EnumTypeDefinition
      TriggerScheduleRequest: MessageTypeDefinition<_runservice_v1_TriggerScheduleRequest, _runservice_v1_TriggerScheduleRequest__Output>
      TriggerScheduleResponse: MessageTypeDefinition<_runservice_v1_TriggerScheduleResponse, _runservice_v1_TriggerScheduleResponse__Output>
      Workflow: MessageTypeDefinition<_runservice_v1_Workflow, _runservice_v1_Workflow__Output>
      WorkflowState: MessageTypeDefinition<_runservice_v1_WorkflowState, _runservice_v1_WorkflowState__Output>
      WorkflowVersion: MessageTypeDefinition<_runservice_v1_WorkflowVersion, _runservice_v1_WorkflowVersion__Output>
    }
  }
}

