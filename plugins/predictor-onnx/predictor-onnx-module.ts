import { ContainerModule } from 'inversify';
import { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import { PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import { OnnxPredictorBackend } from './onnx-predictor-backend.js';

/** The onnx predictor backend (`predictor.type: onnx`, onnxruntime-node), SG 1.1 / 3. */
export const predictorOnnxModule = new ContainerModule(({ bind }) => {
  bind(OnnxPredictorBackend).toSelf().inSingletonScope();
  bind(PredictorBackendContribution).toService(OnnxPredictorBackend);
  bind(ModelRuntimeContribution).toService(OnnxPredictorBackend);
});
