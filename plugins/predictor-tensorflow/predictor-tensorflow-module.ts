import { ContainerModule } from 'inversify';
import { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import { PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import { TensorFlowPredictorBackend } from './tensorflow-predictor-backend.js';

/** The tensorflow predictor backend (`predictor.type: tensorflow`: TF.js on wasm, or tfjs-node when installed), SG 1.1 / 3. */
export const predictorTensorflowModule = new ContainerModule(({ bind }) => {
  bind(TensorFlowPredictorBackend).toSelf().inSingletonScope();
  bind(PredictorBackendContribution).toService(TensorFlowPredictorBackend);
  bind(ModelRuntimeContribution).toService(TensorFlowPredictorBackend);
});
