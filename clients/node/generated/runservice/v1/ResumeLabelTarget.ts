// Original file: runservice/v1/run.proto

import type { StepPath as _runservice_v1_StepPath, StepPath__Output as _runservice_v1_StepPath__Output } from '../../runservice/v1/StepPath';

/**
 * Where a resume label points.
 */
export interface ResumeLabelTarget {
  /**
   * The suspended step the label resumes.
   */
  'path'?: (_runservice_v1_StepPath | null);
  /**
   * True when for_each_index is meaningful.
   */
  'hasForEachIndex'?: (boolean);
  /**
   * The foreach item the label resumes.
   */
  'forEachIndex'?: (number);
}

/**
 * Where a resume label points.
 */
export interface ResumeLabelTarget__Output {
  /**
   * The suspended step the label resumes.
   */
  'path': (_runservice_v1_StepPath__Output | null);
  /**
   * True when for_each_index is meaningful.
   */
  'hasForEachIndex': (boolean);
  /**
   * The foreach item the label resumes.
   */
  'forEachIndex': (number);
}
