import { ContainerModule } from 'inversify';
import { PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import { JavascriptPredictorBackend } from './javascript-predictor-backend.js';

/** The javascript predictor backend (`predictor.type: javascript`, alias `typescript`), SG 1.1 / 3. */
export const predictorJavascriptModule = new ContainerModule(({ bind }) => {
  bind(JavascriptPredictorBackend).toSelf().inSingletonScope();
  bind(PredictorBackendContribution).toService(JavascriptPredictorBackend);
});
