// Original file: runservice/v1/run.proto

import type { StepGraphNodeKind as _runservice_v1_StepGraphNodeKind, StepGraphNodeKind__Output as _runservice_v1_StepGraphNodeKind__Output } from '../../runservice/v1/StepGraphNodeKind';
import type { StepGraphNode as _runservice_v1_StepGraphNode, StepGraphNode__Output as _runservice_v1_StepGraphNode__Output } from '../../runservice/v1/StepGraphNode';
import type { LoopKind as _runservice_v1_LoopKind, LoopKind__Output as _runservice_v1_LoopKind__Output } from '../../runservice/v1/LoopKind';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from '../../google/protobuf/Value';
import type { Long } from '@grpc/proto-loader';

/**
 * One node of a workflow's step graph, in execution order.
 */
export interface StepGraphNode {
  /**
   * What kind of node this is.
   */
  'kind'?: (_runservice_v1_StepGraphNodeKind);
  /**
   * The step id (for STEP, MAP, SLEEP and SLEEP_UNTIL nodes).
   */
  'id'?: (string);
  /**
   * The step's description, if any.
   */
  'description'?: (string);
  /**
   * Branches of PARALLEL and CONDITIONAL nodes; the body of LOOP and FOREACH nodes.
   */
  'children'?: (_runservice_v1_StepGraphNode)[];
  /**
   * For CONDITIONAL nodes: a description of each child's condition, in order.
   */
  'conditions'?: (string)[];
  /**
   * For LOOP nodes: the loop kind.
   */
  'loopKind'?: (_runservice_v1_LoopKind);
  /**
   * For FOREACH nodes: how many items run at once.
   */
  'concurrency'?: (number);
  /**
   * For SLEEP nodes: the fixed duration in milliseconds (0 when computed by a function).
   */
  'durationMs'?: (number | string | Long);
  /**
   * For SLEEP_UNTIL nodes: the fixed wake-up time (unset when computed by a function).
   */
  'until'?: (_google_protobuf_Timestamp | null);
  /**
   * For STEP nodes: true when the step declares a suspend or resume schema.
   */
  'canSuspend'?: (boolean);
  /**
   * For STEP nodes that are nested workflows: the nested workflow's graph.
   */
  'workflow'?: (_runservice_v1_StepGraphNode)[];
  /**
   * For PARALLEL nodes: failed branches become null instead of failing the block.
   */
  'allowFailure'?: (boolean);
  /**
   * For MAP nodes: the declarative mapping, if it is not a function.
   */
  'mapConfig'?: (_google_protobuf_Value | null);
}

/**
 * One node of a workflow's step graph, in execution order.
 */
export interface StepGraphNode__Output {
  /**
   * What kind of node this is.
   */
  'kind': (_runservice_v1_StepGraphNodeKind__Output);
  /**
   * The step id (for STEP, MAP, SLEEP and SLEEP_UNTIL nodes).
   */
  'id': (string);
  /**
   * The step's description, if any.
   */
  'description': (string);
  /**
   * Branches of PARALLEL and CONDITIONAL nodes; the body of LOOP and FOREACH nodes.
   */
  'children': (_runservice_v1_StepGraphNode__Output)[];
  /**
   * For CONDITIONAL nodes: a description of each child's condition, in order.
   */
  'conditions': (string)[];
  /**
   * For LOOP nodes: the loop kind.
   */
  'loopKind': (_runservice_v1_LoopKind__Output);
  /**
   * For FOREACH nodes: how many items run at once.
   */
  'concurrency': (number);
  /**
   * For SLEEP nodes: the fixed duration in milliseconds (0 when computed by a function).
   */
  'durationMs': (string);
  /**
   * For SLEEP_UNTIL nodes: the fixed wake-up time (unset when computed by a function).
   */
  'until': (_google_protobuf_Timestamp__Output | null);
  /**
   * For STEP nodes: true when the step declares a suspend or resume schema.
   */
  'canSuspend': (boolean);
  /**
   * For STEP nodes that are nested workflows: the nested workflow's graph.
   */
  'workflow': (_runservice_v1_StepGraphNode__Output)[];
  /**
   * For PARALLEL nodes: failed branches become null instead of failing the block.
   */
  'allowFailure': (boolean);
  /**
   * For MAP nodes: the declarative mapping, if it is not a function.
   */
  'mapConfig': (_google_protobuf_Value__Output | null);
}
