import { injectable } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import type { LoadedPredictor, PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import { CatalogModelClient, type RunnableModel } from '../../core/predictor/catalog-model-client.js';
import type { CatalogModel } from '../../core/predictor/model-catalog.js';
import { locateModels } from '../../core/predictor/model-layout.js';
import { createModelPredictor } from '../../core/predictor/model-predictor.js';
import { nodeModelFs } from '../../core/predictor/node-model-fs.js';
import { loadTfModel } from './tf-models.js';
import { parseRuntimeChoice, runtimeFor, TFJS_RUNTIME_ENV } from './tfjs-runtime.js';

function importUserFile(path: string): Promise<Record<string, unknown>> {
  return importUserModule(path, 'a tensorflow predictor or request handler');
}

/**
 * `predictor.type: tensorflow`: TF.js models (model.json + weight shards, layers or graph) through
 * @tensorflow/tfjs with the wasm backend, or through @tensorflow/tfjs-node-gpu / @tensorflow/tfjs-node
 * when they can be imported (then SavedModel folders too). The runtime is chosen once per thread
 * (`MYELIN_TFJS_RUNTIME` in the process or `predictor.env`: auto | native | wasm | cpu), logged, and
 * shown in describe(). Models are served through the user's `TensorFlowPredictor` (`predictor.path`),
 * the legacy `request_handler`, or directly (JSON in, outputs out). `load` throws `PredictorError`.
 */
@injectable()
export class TensorFlowPredictorBackend implements PredictorBackendContribution, ModelRuntimeContribution {
  readonly kind = 'tensorflow';

  async load(spec: ApiSpec, log: Logger): Promise<LoadedPredictor> {
    const client = await this.loadClient(spec, log);
    return createModelPredictor({ spec, client, type: 'tensorflow', runtime: client.runtime, importFile: importUserFile, log });
  }

  /** The API's models in the TF.js runtime (also the `tensorflow_client` the Python bridge proxies to). */
  async loadClient(spec: ApiSpec, log: Logger): Promise<CatalogModelClient> {
    const backendLog = log.child({ component: 'predictor-tensorflow/backend' });
    const locations = await locateModels(spec.predictor, nodeModelFs, { backend: 'tensorflow', isModelFile: () => false });
    const choice = parseRuntimeChoice(spec.predictor.env[TFJS_RUNTIME_ENV] ?? process.env[TFJS_RUNTIME_ENV]);
    const rt = await runtimeFor(choice, backendLog);
    backendLog.info({ runtime: rt.label, native: rt.native, models: locations.map((l) => ({ name: l.name, versions: l.versions.map((v) => v.version) })) }, 'tensorflow runtime');
    const loaded: RunnableModel[] = [];
    const models: CatalogModel<RunnableModel>[] = [];
    try {
      for (const loc of locations) {
        const versions = [];
        for (const v of loc.versions) {
          const model = await loadTfModel(rt, nodeModelFs, v.path, loc.signatureKey, `model "${loc.name}" version ${v.version}`);
          loaded.push(model);
          versions.push({ version: v.version, model });
          backendLog.info({ model: loc.name, version: v.version, ...model.info, inputs: model.inputs, outputs: model.outputs.map((o) => o.name) }, 'tensorflow model loaded');
        }
        models.push({ name: loc.name, versions });
      }
    } catch (err) {
      await Promise.allSettled(loaded.map((m) => m.release()));
      throw err;
    }
    return new CatalogModelClient(models, rt.label);
  }
}
