import { inject, injectable, optional } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import type { LoadedPredictor, PredictorBackendContribution, PredictorHost } from '../../core/ports/predictor-backend.js';
import { tensorBatchingOf, type TensorBatching } from '../../core/predictor/tensor-batcher.js';
import { ModelFs } from '../../core/ports/model-fs.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import { UserModuleImporter } from '../../core/ports/user-module-importer.js';
import { openModelClient, type ManagedModelClient } from '../../core/predictor/managed-model-client.js';
import { createModelPredictor } from '../../core/predictor/model-predictor.js';
import { TENSORFLOW_FORMAT } from '../../core/predictor/model-tree.js';
import { loadTfModel } from './tf-models.js';
import { parseRuntimeChoice, runtimeFor, TFJS_RUNTIME_ENV } from './tfjs-runtime.js';

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

  constructor(
    @inject(UserModuleImporter) private readonly importer: UserModuleImporter,
    @inject(ModelFs) private readonly modelFs: ModelFs,
    @inject(ModelProvider) @optional() private readonly provider?: ModelProvider,
  ) {}

  async load(spec: ApiSpec, log: Logger, host?: PredictorHost): Promise<LoadedPredictor> {
    const client = await this.loadClient(spec, log, tensorBatchingOf(spec.predictor.serverSideBatching, host, log));
    return createModelPredictor({ spec, client, type: 'tensorflow', runtime: client.runtime, importFile: (path) => importUserModule(this.importer, path, 'a tensorflow predictor or request handler'), log });
  }

  /** The API's models in the TF.js runtime (also the `tensorflow_client` the Python bridge proxies to). */
  async loadClient(spec: ApiSpec, log: Logger, batching?: TensorBatching): Promise<ManagedModelClient> {
    const backendLog = log.child({ component: 'predictor-tensorflow/backend' });
    if (!this.provider) throw new PredictorError('no model store is configured in this process (ModelProvider is not bound)', { code: 'ENG_PREDICTOR_LOAD' });
    const choice = parseRuntimeChoice(spec.predictor.env[TFJS_RUNTIME_ENV] ?? process.env[TFJS_RUNTIME_ENV]);
    const rt = await runtimeFor(choice, backendLog);
    backendLog.info({ runtime: rt.label, native: rt.native }, 'tensorflow runtime');
    return openModelClient({
      spec,
      provider: this.provider,
      format: TENSORFLOW_FORMAT,
      runtime: rt.label,
      log: backendLog,
      loadVersion: async (path, where, signatureKey) => {
        const model = await loadTfModel(rt, this.modelFs, path, signatureKey, where, batching);
        backendLog.info({ where, ...model.info, inputs: model.inputs, outputs: model.outputs.map((o) => o.name) }, 'tensorflow model loaded');
        return model;
      },
    });
  }
}
