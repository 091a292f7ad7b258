import { EngineError } from '../../core/errors.js';

/** A `--set key=value` (or the dashboard's what-if form) that cannot be applied (400 at the control API). */
export class WhatIfError extends EngineError {
  constructor(message: string) {
    super('ENG_WHAT_IF_INVALID', message);
  }
}
