// Original file: runservice/v1/run.proto

/**
 * Kind of a node of a workflow's step graph.
 */
export const StepGraphNodeKind = {
  /**
   * Never set by the server.
   */
  STEP_GRAPH_NODE_KIND_UNSPECIFIED: 'STEP_GRAPH_NODE_KIND_UNSPECIFIED',
  /**
   * A single step (or a nested workflow, see StepGraphNode.workflow).
   */
  STEP_GRAPH_NODE_KIND_STEP: 'STEP_GRAPH_NODE_KIND_STEP',
  /**
   * Children run concurrently on the same input.
   */
  STEP_GRAPH_NODE_KIND_PARALLEL: 'STEP_GRAPH_NODE_KIND_PARALLEL',
  /**
   * Children run when their condition is true.
   */
  STEP_GRAPH_NODE_KIND_CONDITIONAL: 'STEP_GRAPH_NODE_KIND_CONDITIONAL',
  /**
   * The single child repeats (dowhile / dountil).
   */
  STEP_GRAPH_NODE_KIND_LOOP: 'STEP_GRAPH_NODE_KIND_LOOP',
  /**
   * The single child runs once per item of the input list.
   */
  STEP_GRAPH_NODE_KIND_FOREACH: 'STEP_GRAPH_NODE_KIND_FOREACH',
  /**
   * Pass-through pause for a duration.
   */
  STEP_GRAPH_NODE_KIND_SLEEP: 'STEP_GRAPH_NODE_KIND_SLEEP',
  /**
   * Pass-through pause until a time.
   */
  STEP_GRAPH_NODE_KIND_SLEEP_UNTIL: 'STEP_GRAPH_NODE_KIND_SLEEP_UNTIL',
  /**
   * A mapping step built with map.
   */
  STEP_GRAPH_NODE_KIND_MAP: 'STEP_GRAPH_NODE_KIND_MAP',
} as const;

/**
 * Kind of a node of a workflow's step graph.
 */
export type StepGraphNodeKind =
  /**
   * Never set by the server.
   */
  | 'STEP_GRAPH_NODE_KIND_UNSPECIFIED'
  | 0
  /**
   * A single step (or a nested workflow, see StepGraphNode.workflow).
   */
  | 'STEP_GRAPH_NODE_KIND_STEP'
  | 1
  /**
   * Children run concurrently on the same input.
   */
  | 'STEP_GRAPH_NODE_KIND_PARALLEL'
  | 2
  /**
   * Children run when their condition is true.
   */
  | 'STEP_GRAPH_NODE_KIND_CONDITIONAL'
  | 3
  /**
   * The single child repeats (dowhile / dountil).
   */
  | 'STEP_GRAPH_NODE_KIND_LOOP'
  | 4
  /**
   * The single child runs once per item of the input list.
   */
  | 'STEP_GRAPH_NODE_KIND_FOREACH'
  | 5
  /**
   * Pass-through pause for a duration.
   */
  | 'STEP_GRAPH_NODE_KIND_SLEEP'
  | 6
  /**
   * Pass-through pause until a time.
   */
  | 'STEP_GRAPH_NODE_KIND_SLEEP_UNTIL'
  | 7
  /**
   * A mapping step built with map.
   */
  | 'STEP_GRAPH_NODE_KIND_MAP'
  | 8

/**
 * Kind of a node of a workflow's step graph.
 */
export type StepGraphNodeKind__Output = typeof StepGraphNodeKind[keyof typeof StepGraphNodeKind]
