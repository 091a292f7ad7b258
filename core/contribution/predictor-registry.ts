import { injectable, multiInject } from 'inversify';
import type { ApiSpec } from '../config/api-spec.js';
import { PredictorBackendContribution } from '../ports/predictor-backend.js';
import { KindRegistry } from './kind-registry.js';

/**
 * Resolves a predictor backend by `predictor.type` (or an alias such as `typescript`) among the
 * contributions of the loaded plugin modules (SG 3). The only class that injects
 * `PredictorBackendContribution`. `get` throws `UnknownKindError` listing the known kinds.
 */
@injectable()
export class PredictorRegistry extends KindRegistry<PredictorBackendContribution> {
  constructor(@multiInject(PredictorBackendContribution) all: readonly PredictorBackendContribution[]) {
    super('predictor', all);
    this.all = all;
  }

  private readonly all: readonly PredictorBackendContribution[];

  /**
   * The backend that serves `spec`: the first contribution that `claims` it (a `.py` ONNXPredictor goes
   * to the Python bridge), else the one registered for `predictor.type`. Throws `UnknownKindError`.
   */
  forSpec(spec: ApiSpec): PredictorBackendContribution {
    return this.all.find((c) => c.claims?.(spec) === true) ?? this.get(spec.predictor.type);
  }
}
