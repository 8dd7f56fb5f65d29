// Original file: runservice/v1/run.proto


/**
 * One served version of a workflow definition.
 */
export interface WorkflowVersion {
  /**
   * The version the author gave ("1" by default).
   */
  'version'?: (string);
  /**
   * Digest ("sha256:<hex>") of the version's step graph.
   */
  'digest'?: (string);
  /**
   * True for the newest version (the last registered): new runs start on it.
   */
  'newest'?: (boolean);
}

/**
 * One served version of a workflow definition.
 */
export interface WorkflowVersion__Output {
  /**
   * The version the author gave ("1" by default).
   */
  'version': (string);
  /**
   * Digest ("sha256:<hex>") of the version's step graph.
   */
  'digest': (string);
  /**
   * True for the newest version (the last registered): new runs start on it.
   */
  'newest': (boolean);
}
