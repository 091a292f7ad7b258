import { ContainerModule } from 'inversify';
import { PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import { PythonPredictorBackend } from './python-predictor-backend.js';

/** The Python bridge (`predictor.type: python` and `.py` onnx/tensorflow predictors and request handlers), SG 1.1 / 3. */
export const predictorPythonModule = new ContainerModule(({ bind }) => {
  bind(PythonPredictorBackend).toSelf().inSingletonScope();
  bind(PredictorBackendContribution).toService(PythonPredictorBackend);
});
