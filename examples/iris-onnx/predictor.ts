import type { ModelClient, ONNXPredictor as ONNXPredictorContract, ONNXPredictorContext, PredictArgs } from 'myelin';
import { HttpError } from 'myelin';

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

/**
 * Cortex's iris-classifier example in TypeScript: `{ "sepal_length": 5.2, "sepal_width": 3.6,
 * "petal_length": 1.4, "petal_width": 0.3 }` → `{ "label": "setosa", "probabilities": {…} }`.
 */
export class ONNXPredictor implements ONNXPredictorContract {
  private readonly client: ModelClient;
  private readonly labels: readonly string[];

  constructor({ onnxClient, config }: ONNXPredictorContext) {
    this.client = onnxClient;
    this.labels = (config.labels as string[] | undefined) ?? ['setosa', 'versicolor', 'virginica'];
  }

  async predict({ payload }: PredictArgs): Promise<unknown> {
    const sample = payload as Record<string, unknown> | null;
    if (typeof sample !== 'object' || sample === null) throw new HttpError(400, `expected a JSON object with ${FEATURES.join(', ')}`);
    const row = FEATURES.map((f) => {
      const v = sample[f];
      if (typeof v !== 'number') throw new HttpError(400, `"${f}" must be a number (got ${JSON.stringify(v)})`);
      return v;
    });
    // A batch of one row; the model takes [batch, 4] float32 and the client converts the nested array.
    const out = (await this.client.predict([row])) as { label: number[]; probabilities: number[][] };
    const probabilities = Object.fromEntries(this.labels.map((l, i) => [l, out.probabilities[0][i]]));
    return { label: this.labels[out.label[0]], probabilities };
  }
}
