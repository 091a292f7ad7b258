// A pure TypeScript predictor (no model file, no build step): an iris classifier that picks the class
// whose mean measurements are nearest to the sample (nearest centroid, standardized features), the
// TypeScript counterpart of Cortex's iris-classifier example. Served by `myelin serve` as is.
import { HttpError, type PredictArgs, type Predictor, type PredictorContext } from 'myelin';

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

/** Per-class feature means and the per-feature standard deviation of the iris data set (cm). */
const CENTROIDS: Record<string, readonly number[]> = {
  setosa: [5.006, 3.428, 1.462, 0.246],
  versicolor: [5.936, 2.77, 4.26, 1.326],
  virginica: [6.588, 2.974, 5.552, 2.026],
};
const STD = [0.828, 0.436, 1.765, 0.762];

export class IrisPredictor implements Predictor {
  private readonly labels: readonly string[];
  private readonly log: PredictorContext['log'];

  constructor({ config, log }: PredictorContext) {
    // `predictor.config` from myelin.yaml: which classes to answer with (default all three).
    this.labels = Array.isArray(config.labels) ? (config.labels as string[]) : Object.keys(CENTROIDS);
    this.log = log;
    this.log.info({ labels: this.labels }, 'iris predictor constructed');
  }

  predict({ payload }: PredictArgs): string {
    const sample = readSample(payload);
    let best = '';
    let bestDistance = Infinity;
    for (const label of this.labels) {
      const c = CENTROIDS[label];
      if (!c) continue;
      let d = 0;
      for (let i = 0; i < c.length; i++) d += ((sample[i] - c[i]) / STD[i]) ** 2;
      if (d < bestDistance) {
        bestDistance = d;
        best = label;
      }
    }
    return best;
  }
}

function readSample(payload: unknown): number[] {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new HttpError(400, `expected a JSON object with ${FEATURES.join(', ')}`);
  }
  return FEATURES.map((f) => {
    const v = (payload as Record<string, unknown>)[f];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `"${f}" must be a number (got ${JSON.stringify(v) ?? 'nothing'})`);
    return v;
  });
}

// The replica looks for a class named Predictor (named export) or a default-exported class.
export { IrisPredictor as Predictor };
