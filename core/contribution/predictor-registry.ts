import { injectable, multiInject } from 'inversify';
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
  }
}
