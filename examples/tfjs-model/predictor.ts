import type { ModelClient, PredictArgs, TensorFlowPredictor as TensorFlowPredictorContract, TensorFlowPredictorContext } from 'myelin';
import { HttpError } from 'myelin';

/**
 * Serves the TF.js iris model: `{ "features": [6.3, 3.3, 6.0, 2.5] }` (or a list of such rows under
 * "instances") → `{ "predictions": [{ "label": "virginica", "confidence": 0.99 }] }`.
 */
export class TensorFlowPredictor implements TensorFlowPredictorContract {
  private readonly client: ModelClient;
  private readonly labels: readonly string[];

  constructor({ tensorflowClient, config }: TensorFlowPredictorContext) {
    this.client = tensorflowClient;
    this.labels = (config.labels as string[] | undefined) ?? ['setosa', 'versicolor', 'virginica'];
  }

  async predict({ payload }: PredictArgs): Promise<unknown> {
    const body = payload as { features?: unknown; instances?: unknown } | null;
    const rows = body?.instances ?? (body?.features !== undefined ? [body.features] : undefined);
    if (!Array.isArray(rows)) throw new HttpError(400, 'send {"features": [4 numbers]} or {"instances": [[4 numbers], …]}');
    // Shape and dtype are checked against the model's input signature ([-1, 4] float32): a bad row is a 400.
    const out = (await this.client.predict(rows)) as { probabilities: number[][] };
    return {
      predictions: out.probabilities.map((p) => {
        const best = p.indexOf(Math.max(...p));
        return { label: this.labels[best], confidence: p[best] };
      }),
    };
  }
}
