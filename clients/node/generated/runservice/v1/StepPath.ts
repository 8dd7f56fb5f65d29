// Original file: runservice/v1/run.proto


/**
 * A path of step ids from the top-level workflow down to a step, for example
 * ["outer-step", "inner-step"] for a step inside a nested workflow.
 */
export interface StepPath {
  /**
   * Step ids, outermost first.
   */
  'ids'?: (string)[];
}

/**
 * A path of step ids from the top-level workflow down to a step, for example
 * ["outer-step", "inner-step"] for a step inside a nested workflow.
 */
export interface StepPath__Output {
  /**
   * Step ids, outermost first.
   */
  'ids': (string)[];
}
