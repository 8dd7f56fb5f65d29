// Original file: runservice/v1/run.proto

/**
 * Kind of a loop node.
 */
export const LoopKind = {
  /**
   * Not a loop.
   */
  LOOP_KIND_UNSPECIFIED: 'LOOP_KIND_UNSPECIFIED',
  /**
   * Repeats while the condition is true.
   */
  LOOP_KIND_DOWHILE: 'LOOP_KIND_DOWHILE',
  /**
   * Repeats until the condition is true.
   */
  LOOP_KIND_DOUNTIL: 'LOOP_KIND_DOUNTIL',
} as const;

/**
 * Kind of a loop node.
 */
export type LoopKind =
  /**
   * Not a loop.
   */
  | 'LOOP_KIND_UNSPECIFIED'
  | 0
  /**
   * Repeats while the condition is true.
   */
  | 'LOOP_KIND_DOWHILE'
  | 1
  /**
   * Repeats until the condition is true.
   */
  | 'LOOP_KIND_DOUNTIL'
  | 2

/**
 * Kind of a loop node.
 */
export type LoopKind__Output = typeof LoopKind[keyof typeof LoopKind]
