import type { Registry } from 'prom-client';

/** One exported line of a metric, in the shape prom-client's registry formats. */
interface MetricValue {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName: string;
}

/**
 * A label-less Prometheus histogram whose `observe` is a bucket search and three additions: prom-client's
 * `Histogram#observe` validates and hashes labels on every call (about 3 % of a micro-model replica's
 * CPU per request, docs/performance.md). Registered in a prom-client `Registry` as a metric of its own
 * (the registry only needs `name`, `help`, `type`, `get`, `reset`); exported exactly as prom-client's
 * histogram is: cumulative `_bucket{le}` lines, `+Inf`, `_sum`, `_count`, with the registry's default
 * labels. Single-threaded; values are seconds (or whatever unit the buckets are in).
 */
export class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.counts = new Float64Array(this.bounds.length);
    registry.registerMetric(this as never);
  }

  /** One observation (finite numbers only; others are ignored). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  /** What prom-client's registry reads at scrape time. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i];
      values.push({ value: acc, labels: { le: this.bounds[i] }, metricName: bucket });
    }
    values.push({ value: this.count, labels: { le: '+Inf' }, metricName: bucket });
    values.push({ value: this.sum, labels: {}, metricName: `${this.name}_sum` });
    values.push({ value: this.count, labels: {}, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
