// Original file: runservice/v1/run.proto

import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { StepInfo as _runservice_v1_StepInfo, StepInfo__Output as _runservice_v1_StepInfo__Output } from '../../runservice/v1/StepInfo';
import type { StepGraphNode as _runservice_v1_StepGraphNode, StepGraphNode__Output as _runservice_v1_StepGraphNode__Output } from '../../runservice/v1/StepGraphNode';
import type { WorkflowVersion as _runservice_v1_WorkflowVersion, WorkflowVersion__Output as _runservice_v1_WorkflowVersion__Output } from '../../runservice/v1/WorkflowVersion';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

/**
 * A workflow this server runs.
 */
export interface Workflow {
  /**
   * The workflow id.
   */
  'id'?: (string);
  /**
   * The workflow's description.
   */
  'description'?: (string);
  /**
   * JSON Schema of the run input.
   */
  'inputSchema'?: (_google_protobuf_Value | null);
  /**
   * JSON Schema of the run result.
   */
  'outputSchema'?: (_google_protobuf_Value | null);
  /**
   * JSON Schema of the run state; unset if the workflow declares none.
   */
  'stateSchema'?: (_google_protobuf_Value | null);
  /**
   * Every step, nested workflows' steps included (with dotted ids).
   */
  'steps'?: (_runservice_v1_StepInfo)[];
  /**
   * The step graph, in execution order.
   */
  'stepGraph'?: (_runservice_v1_StepGraphNode)[];
  /**
   * The version this message describes: the newest served version, the one
   * new runs start on. "1" unless the author gave one.
   */
  'version'?: (string);
  /**
   * Digest ("sha256:<hex>") of this version's step graph: ids, kinds, structure
   * and schemas, stable across processes.
   */
  'digest'?: (string);
  /**
   * Every version this server serves, oldest first; runs in flight finish on the
   * version they started on, so a version is served until no active run needs it.
   */
  'versions'?: (_runservice_v1_WorkflowVersion)[];
  /**
   * How long a run of this workflow may take (wall clock, suspended and sleeping time
   * included); unset when unlimited. See StartRequest.timeout.
   */
  'timeout'?: (_google_protobuf_Duration | null);
  /**
   * How many runs of this workflow are driven at once, sleeping ones aside, by all
   * the servers sharing the database together
   * (the author's `max_active_runs`, or the server's `--workflow-max-active-runs` in
   * its place); past it, its runs started, resumed or ticked
   * are stored and answered, and wait their turn. 0 when only the server's own
   * bound applies.
   */
  'maxActiveRuns'?: (number);
}

/**
 * A workflow this server runs.
 */
export interface Workflow__Output {
  /**
   * The workflow id.
   */
  'id': (string);
  /**
   * The workflow's description.
   */
  'description': (string);
  /**
   * JSON Schema of the run input.
   */
  'inputSchema': (_google_protobuf_Value__Output | null);
  /**
   * JSON Schema of the run result.
   */
  'outputSchema': (_google_protobuf_Value__Output | null);
  /**
   * JSON Schema of the run state; unset if the workflow declares none.
   */
  'stateSchema': (_google_protobuf_Value__Output | null);
  /**
   * Every step, nested workflows' steps included (with dotted ids).
   */
  'steps': (_runservice_v1_StepInfo__Output)[];
  /**
   * The step graph, in execution order.
   */
  'stepGraph': (_runservice_v1_StepGraphNode__Output)[];
  /**
   * The version this message describes: the newest served version, the one
   * new runs start on. "1" unless the author gave one.
   */
  'version': (string);
  /**
   * Digest ("sha256:<hex>") of this version's step graph: ids, kinds, structure
   * and schemas, stable across processes.
   */
  'digest': (string);
  /**
   * Every version this server serves, oldest first; runs in flight finish on the
   * version they started on, so a version is served until no active run needs it.
   */
  'versions': (_runservice_v1_WorkflowVersion__Output)[];
  /**
   * How long a run of this workflow may take (wall clock, suspended and sleeping time
   * included); unset when unlimited. See StartRequest.timeout.
   */
  'timeout': (_google_protobuf_Duration__Output | null);
  /**
   * How many runs of this workflow are driven at once, sleeping ones aside, by all
   * the servers sharing the database together
   * (the author's `max_active_runs`, or the server's `--workflow-max-active-runs` in
   * its place); past it, its runs started, resumed or ticked
   * are stored and answered, and wait their turn. 0 when only the server's own
   * bound applies.
   */
  'maxActiveRuns': (number);
}
