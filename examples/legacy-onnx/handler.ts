import type { ModelMetadata } from 'myelin';

/**
 * A legacy (`kind: api`) request handler, as in Cortex 0.x: `pre_inference` turns the request into the
 * model input, `post_inference` turns the model output into the response.
 *
 * Differences from Cortex's Python handlers: `metadata` is `{ name, versions, inputs, outputs }` with
 * `inputs[i].name/dtype/shape`, and `prediction` is an object keyed by output name
 * (`{ label: [...], probabilities: [[...]] }`) rather than a list of outputs.
 */
const LABELS = ['setosa', 'versicolor', 'virginica'];

interface IrisSample {
  readonly sepal_length: number;
  readonly sepal_width: number;
  readonly petal_length: number;
  readonly petal_width: number;
}

export function pre_inference(sample: IrisSample, metadata: ModelMetadata): Record<string, number[][]> {
  return { [metadata.inputs[0].name]: [[sample.sepal_length, sample.sepal_width, sample.petal_length, sample.petal_width]] };
}

export function post_inference(prediction: { label: number[]; probabilities: number[][] }, _metadata: ModelMetadata): unknown {
  const index = prediction.label[0];
  return { class_label: LABELS[index], class_index: index, probabilities: prediction.probabilities[0] };
}
