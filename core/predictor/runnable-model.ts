import type { TensorSignature } from './predictor-contract.js';
import type { TensorData } from './tensor-data.js';

/** One loaded model version, as a backend (onnxruntime-node, TF.js) runs it. */
export interface RunnableModel {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Extra facts shown in describe() for the latest version (format, skipped outputs, signature key…). */
  readonly info?: Readonly<Record<string, unknown>>;
  /** Runs the model on inputs already checked against `inputs`; one flat tensor per output, in `outputs` order. */
  run(inputs: readonly TensorData[]): Promise<TensorData[]>;
  release(): Promise<void>;
}
