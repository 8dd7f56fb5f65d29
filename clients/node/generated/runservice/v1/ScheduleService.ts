// Original file: runservice/v1/schedule_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetScheduleRequest as _runservice_v1_GetScheduleRequest, GetScheduleRequest__Output as _runservice_v1_GetScheduleRequest__Output } from '../../runservice/v1/GetScheduleRequest';
import type { GetScheduleResponse as _runservice_v1_GetScheduleResponse, GetScheduleResponse__Output as _runservice_v1_GetScheduleResponse__Output } from '../../runservice/v1/GetScheduleResponse';
import type { ListSchedulesRequest as _runservice_v1_ListSchedulesRequest, ListSchedulesRequest__Output as _runservice_v1_ListSchedulesRequest__Output } from '../../runservice/v1/ListSchedulesRequest';
import type { ListSchedulesResponse as _runservice_v1_ListSchedulesResponse, ListSchedulesResponse__Output as _runservice_v1_ListSchedulesResponse__Output } from '../../runservice/v1/ListSchedulesResponse';
import type { PauseScheduleRequest as _runservice_v1_PauseScheduleRequest, PauseScheduleRequest__Output as _runservice_v1_PauseScheduleRequest__Output } from '../../runservice/v1/PauseScheduleRequest';
import type { PauseScheduleResponse as _runservice_v1_PauseScheduleResponse, PauseScheduleResponse__Output as _runservice_v1_PauseScheduleResponse__Output } from '../../runservice/v1/PauseScheduleResponse';
import type { ResumeScheduleRequest as _runservice_v1_ResumeScheduleRequest, ResumeScheduleRequest__Output as _runservice_v1_ResumeScheduleRequest__Output } from '../../runservice/v1/ResumeScheduleRequest';
import type { ResumeScheduleResponse as _runservice_v1_ResumeScheduleResponse, ResumeScheduleResponse__Output as _runservice_v1_ResumeScheduleResponse__Output } from '../../runservice/v1/ResumeScheduleResponse';
import type { TriggerScheduleRequest as _runservice_v1_TriggerScheduleRequest, TriggerScheduleRequest__Output as _runservice_v1_TriggerScheduleRequest__Output } from '../../runservice/v1/TriggerScheduleRequest';
import type { TriggerScheduleResponse as _runservice_v1_TriggerScheduleResponse, TriggerScheduleResponse__Output as _runservice_v1_TriggerScheduleResponse__Output } from '../../runservice/v1/TriggerScheduleResponse';

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
export interface ScheduleServiceClient extends grpc.Client {
  /**
   * Returns one schedule.
   */
  GetSchedule(argument: _runservice_v1_GetScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  GetSchedule(argument: _runservice_v1_GetScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  GetSchedule(argument: _runservice_v1_GetScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  GetSchedule(argument: _runservice_v1_GetScheduleRequest, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Returns one schedule.
   */
  getSchedule(argument: _runservice_v1_GetScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  getSchedule(argument: _runservice_v1_GetScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  getSchedule(argument: _runservice_v1_GetScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  getSchedule(argument: _runservice_v1_GetScheduleRequest, callback: grpc.requestCallback<_runservice_v1_GetScheduleResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists every schedule, sorted by id.
   */
  ListSchedules(argument: _runservice_v1_ListSchedulesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  ListSchedules(argument: _runservice_v1_ListSchedulesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  ListSchedules(argument: _runservice_v1_ListSchedulesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  ListSchedules(argument: _runservice_v1_ListSchedulesRequest, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists every schedule, sorted by id.
   */
  listSchedules(argument: _runservice_v1_ListSchedulesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  listSchedules(argument: _runservice_v1_ListSchedulesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  listSchedules(argument: _runservice_v1_ListSchedulesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  listSchedules(argument: _runservice_v1_ListSchedulesRequest, callback: grpc.requestCallback<_runservice_v1_ListSchedulesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Pauses a schedule: no tick fires until ResumeSchedule. Kept across restarts.
   */
  PauseSchedule(argument: _runservice_v1_PauseScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  PauseSchedule(argument: _runservice_v1_PauseScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  PauseSchedule(argument: _runservice_v1_PauseScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  PauseSchedule(argument: _runservice_v1_PauseScheduleRequest, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Pauses a schedule: no tick fires until ResumeSchedule. Kept across restarts.
   */
  pauseSchedule(argument: _runservice_v1_PauseScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  pauseSchedule(argument: _runservice_v1_PauseScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  pauseSchedule(argument: _runservice_v1_PauseScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  pauseSchedule(argument: _runservice_v1_PauseScheduleRequest, callback: grpc.requestCallback<_runservice_v1_PauseScheduleResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Resumes a paused schedule from its next tick after now; the ticks that fell
   * while it was paused do not fire.
   */
  ResumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  ResumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  ResumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  ResumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Resumes a paused schedule from its next tick after now; the ticks that fell
   * while it was paused do not fire.
   */
  resumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  resumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  resumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  resumeSchedule(argument: _runservice_v1_ResumeScheduleRequest, callback: grpc.requestCallback<_runservice_v1_ResumeScheduleResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Fires a schedule now, outside its cron cadence (paused or not), under its
   * overlap policy; the response says whether a run started and, if not, why.
   */
  TriggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  TriggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  TriggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  TriggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Fires a schedule now, outside its cron cadence (paused or not), under its
   * overlap policy; the response says whether a run started and, if not, why.
   */
  triggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  triggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  triggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  triggerSchedule(argument: _runservice_v1_TriggerScheduleRequest, callback: grpc.requestCallback<_runservice_v1_TriggerScheduleResponse__Output>): grpc.ClientUnaryCall;
  
}

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
export interface ScheduleServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Returns one schedule.
   */
  GetSchedule: grpc.handleUnaryCall<_runservice_v1_GetScheduleRequest__Output, _runservice_v1_GetScheduleResponse>;
  
  /**
   * Lists every schedule, sorted by id.
   */
  ListSchedules: grpc.handleUnaryCall<_runservice_v1_ListSchedulesRequest__Output, _runservice_v1_ListSchedulesResponse>;
  
  /**
   * Pauses a schedule: no tick fires until ResumeSchedule. Kept across restarts.
   */
  PauseSchedule: grpc.handleUnaryCall<_runservice_v1_PauseScheduleRequest__Output, _runservice_v1_PauseScheduleResponse>;
  
  /**
   * Resumes a paused schedule from its next tick after now; the ticks that fell
   * while it was paused do not fire.
   */
  ResumeSchedule: grpc.handleUnaryCall<_runservice_v1_ResumeScheduleRequest__Output, _runservice_v1_ResumeScheduleResponse>;
  
  /**
   * Fires a schedule now, outside its cron cadence (paused or not), under its
   * overlap policy; the response says whether a run started and, if not, why.
   */
  TriggerSchedule: grpc.handleUnaryCall<_runservice_v1_TriggerScheduleRequest__Output, _runservice_v1_TriggerScheduleResponse>;
  
}

export interface ScheduleServiceDefinition extends grpc.ServiceDefinition {
  GetSchedule: MethodDefinition<_runservice_v1_GetScheduleRequest, _runservice_v1_GetScheduleResponse, _runservice_v1_GetScheduleRequest__Output, _runservice_v1_GetScheduleResponse__Output>
  ListSchedules: MethodDefinition<_runservice_v1_ListSchedulesRequest, _runservice_v1_ListSchedulesResponse, _runservice_v1_ListSchedulesRequest__Output, _runservice_v1_ListSchedulesResponse__Output>
  PauseSchedule: MethodDefinition<_runservice_v1_PauseScheduleRequest, _runservice_v1_PauseScheduleResponse, _runservice_v1_PauseScheduleRequest__Output, _runservice_v1_PauseScheduleResponse__Output>
  ResumeSchedule: MethodDefinition<_runservice_v1_ResumeScheduleRequest, _runservice_v1_ResumeScheduleResponse, _runservice_v1_ResumeScheduleRequest__Output, _runservice_v1_ResumeScheduleResponse__Output>
  TriggerSchedule: MethodDefinition<_runservice_v1_TriggerScheduleRequest, _runservice_v1_TriggerScheduleResponse, _runservice_v1_TriggerScheduleRequest__Output, _runservice_v1_TriggerScheduleResponse__Output>
}
