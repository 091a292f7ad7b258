// The trivial TypeScript predictor of benchmarks/python-bridge.bench.ts, the twin of echo_predictor.py:
// answers the payload it was given, so the replica with it costs HTTP, admission and JSON and no model.
// The bridge's own cost per request is the Python twin's latency (or server CPU) minus this one's.
import type { PredictArgs, PredictorContext } from '../../core/predictor/predictor-contract.js';

/** `predict` returns `payload` unchanged (JSON in, the same JSON out). */
export class Predictor {
  constructor(_context: PredictorContext) {}

  predict({ payload }: PredictArgs): unknown {
    return payload;
  }
}
