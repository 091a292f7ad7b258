import type { MonitoringSpec } from '../../core/config/api-spec.js';
import type { MonitoringSample } from '../../core/metrics/metric-sample.js';
import { isPredictorResponse } from '../../core/predictor/predictor-contract.js';

/** Distinct class names kept per interval; the rest count under `OTHER_CLASS` so a sample stays small. */
export const MAX_CLASSES_PER_INTERVAL = 200;
/** Longest class name kept (characters); longer names are cut. */
export const MAX_CLASS_NAME_CHARS = 128;
export const OTHER_CLASS = '(other)';

/**
 * The value `monitoring` watches in a prediction (reference/cortex.md §7): the prediction itself, or
 * `prediction[key]` when `key` is set (a `predictorResponse` is looked into through its `body`).
 * Classification takes a string or an integer (counted as its decimal string); regression a finite
 * number. Returns null when the prediction has no usable value (Cortex only logged a warning).
 */
export function monitoredValue(prediction: unknown, spec: MonitoringSpec): string | number | null {
  if (isPredictorResponse(prediction) && prediction.monitored !== undefined) return prediction.monitored;
  let v = isPredictorResponse(prediction) ? prediction.body : prediction;
  if (spec.key !== undefined) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) return null;
    v = (v as Record<string, unknown>)[spec.key];
  }
  if (spec.modelType === 'classification') {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isInteger(v)) return String(v);
    return null;
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Prediction monitoring of one replica, one sample interval at a time: class counts (classification)
 * or count/min/max/sum (regression; the daemon derives the mean as sum / count, weighted across
 * replicas). `cut()` returns the interval's figures (undefined when nothing was recorded) and resets.
 */
export class PredictionMonitor {
  private classes = new Map<string, number>();
  private count = 0;
  private min = Infinity;
  private max = -Infinity;
  private sum = 0;

  constructor(readonly spec: MonitoringSpec) {}

  /** Records one extracted value (see `monitoredValue`); false when it does not fit the model type. */
  record(value: string | number | null | undefined): boolean {
    if (value === null || value === undefined) return false;
    if (this.spec.modelType === 'classification') {
      if (typeof value !== 'string') return false;
      let name = value.length > MAX_CLASS_NAME_CHARS ? value.slice(0, MAX_CLASS_NAME_CHARS) : value;
      if (!this.classes.has(name) && this.classes.size >= MAX_CLASSES_PER_INTERVAL) name = OTHER_CLASS;
      this.classes.set(name, (this.classes.get(name) ?? 0) + 1);
      return true;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) return false;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    return true;
  }

  cut(): MonitoringSample | undefined {
    if (this.spec.modelType === 'classification') {
      if (this.classes.size === 0) return undefined;
      const classes = Object.fromEntries(this.classes);
      this.classes = new Map();
      return { modelType: 'classification', classes };
    }
    if (this.count === 0) return undefined;
    const out: MonitoringSample = { modelType: 'regression', count: this.count, min: this.min, max: this.max, sum: this.sum };
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    return out;
  }
}
