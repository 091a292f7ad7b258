import { injectable, multiInject } from 'inversify';
import { ModelRuntimeContribution } from '../ports/model-runtime.js';
import { KindRegistry } from './kind-registry.js';

/**
 * Resolves a model runtime (`onnx`, `tensorflow`) among the loaded plugin modules' contributions. The
 * only class that injects `ModelRuntimeContribution`; `get` throws `UnknownKindError`.
 */
@injectable()
export class ModelRuntimeRegistry extends KindRegistry<ModelRuntimeContribution> {
  constructor(@multiInject(ModelRuntimeContribution) all: readonly ModelRuntimeContribution[]) {
    super('model runtime', all);
  }
}
