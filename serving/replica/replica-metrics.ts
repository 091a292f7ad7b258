import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ModelStats } from '../../core/ports/predictor-backend.js';
import { BucketHistogram } from './bucket-histogram.js';

/** Sum of several predictors' model counters (worker threads, Python processes). */
export function sumModelStats(all: readonly ModelStats[]): ModelStats {
  const sum = (k: keyof ModelStats): number => all.reduce((n, s) => n + (s[k] ?? 0), 0);
  return {
    hits: sum('hits'),
    misses: sum('misses'),
    evictions: sum('evictions'),
    diskEvictions: sum('diskEvictions'),
    loads: sum('loads'),
    loadMsSum: sum('loadMsSum'),
    inMemory: sum('inMemory'),
    onDisk: sum('onDisk'),
  };
}

/** `myelin_batch_size` buckets: powers of two up to 1024, Cortex's largest max_batch_size. */
export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** What the gauges read at scrape time. */
export interface ReplicaGaugeSource {
  counts(): { readonly inFlight: number; readonly queued: number };
  isReady(): boolean;
  /** The predictors' model counters, when they have models. */
  modelStats?(): ModelStats | undefined;
}

/**
 * The replica's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * several replicas in one process and the daemon's own metrics stay apart), labelled `api` and
 * `replica`. Served as text at GET `/metrics`.
 */
export class ReplicaMetrics {
  readonly registry = new Registry();
  // Per-request accounting in plain numbers, read by the counter at scrape time: prom-client's
  // `inc(labels)` hashes its labels on every call (docs/performance.md).
  private answered2xx = 0;
  private answered4xx = 0;
  private answered5xx = 0;
  private readonly latency: BucketHistogram;
  private readonly predictorErrors: Counter<'kind'>;
  private readonly batchSize: Histogram;

  constructor(labels: { readonly api: string; readonly replica: string }, source: ReplicaGaugeSource) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ ...labels });
    const answered = (): Record<'2xx' | '4xx' | '5xx', number> => ({ '2xx': this.answered2xx, '4xx': this.answered4xx, '5xx': this.answered5xx });
    new Counter({
      name: 'myelin_replica_requests_total',
      help: 'Prediction requests answered, by status class (2xx includes 1xx/3xx)',
      labelNames: ['code_class'],
      registers,
      collect() {
        // From 0 to the running totals at each scrape: the exported values only ever grow.
        const a = answered();
        this.reset();
        for (const c of ['2xx', '4xx', '5xx'] as const) this.inc({ code_class: c }, a[c]);
      },
    });
    this.latency = new BucketHistogram(
      'myelin_replica_request_duration_seconds',
      'Prediction request latency, from arrival to answer (seconds)',
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      this.registry,
    );
    this.predictorErrors = new Counter({
      name: 'myelin_replica_predictor_errors_total',
      help: 'Predictions that failed in the predictor: http (HttpError thrown), exception (500), timeout (504), unavailable (worker replaced)',
      labelNames: ['kind'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'myelin_batch_size',
      help: 'Server-side batching: requests per batch run (predictBatch calls, or model runs of an onnx/tensorflow model)',
      buckets: [...BATCH_SIZE_BUCKETS],
      registers,
    });
    new Gauge({
      name: 'myelin_replica_requests_in_flight',
      help: 'Prediction requests admitted and not yet answered (queued + running)',
      registers,
      collect() {
        this.set(source.counts().inFlight);
      },
    });
    new Gauge({
      name: 'myelin_replica_requests_queued',
      help: 'Prediction requests waiting for a free predictor slot',
      registers,
      collect() {
        this.set(source.counts().queued);
      },
    });
    this.modelMetrics(source, registers);
    new Gauge({
      name: 'myelin_replica_ready',
      help: '1 when every predictor instance is constructed and the replica takes predictions',
      registers,
      collect() {
        this.set(source.isReady() ? 1 : 0);
      },
    });
  }

  /**
   * Model cache metrics (docs/models.md), read from the predictors at each scrape: counters advance by
   * what the predictors counted since the last scrape (a restarted worker's counters never go back).
   */
  private modelMetrics(source: ReplicaGaugeSource, registers: Registry[]): void {
    if (!source.modelStats) return;
    const read = (): ModelStats | undefined => source.modelStats!();
    const seen: Partial<Record<keyof ModelStats, number>> = {};
    const counter = (name: string, help: string, key: keyof ModelStats, scale = 1): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = (read()?.[key] ?? 0) * scale;
          const delta = now - (seen[key] ?? 0);
          if (delta > 0) this.inc(delta);
          seen[key] = Math.max(now, seen[key] ?? 0);
        },
      });
    };
    counter('myelin_model_cache_hits_total', 'Predictions whose model version was already in memory', 'hits');
    counter('myelin_model_cache_misses_total', 'Predictions that had to load their model version first', 'misses');
    counter('myelin_model_evictions_total', 'Model versions unloaded from memory by cache_size / cache_bytes', 'evictions');
    counter('myelin_model_disk_evictions_total', 'Downloaded model versions deleted from disk by disk_cache_size / disk_cache_bytes', 'diskEvictions');
    counter('myelin_model_loads_total', 'Model versions loaded into memory', 'loads');
    counter('myelin_model_load_seconds_total', 'Time spent loading model versions into memory (seconds)', 'loadMsSum', 1 / 1000);
    const gauge = (name: string, help: string, key: 'inMemory' | 'onDisk'): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read()?.[key] ?? 0);
        },
      });
    };
    gauge('myelin_models_in_memory', 'Model versions in memory now', 'inMemory');
    gauge('myelin_models_on_disk', 'Downloaded model versions on local disk now (local models are not counted)', 'onDisk');
  }

  recordResponse(status: number, latencyMs: number): void {
    if (status >= 500) this.answered5xx++;
    else if (status >= 400) this.answered4xx++;
    else this.answered2xx++;
    this.latency.observe(latencyMs / 1000);
  }

  /** One server-side batch of `size` requests ran (any thread of this replica). */
  recordBatch(size: number): void {
    this.batchSize.observe(size);
  }

  recordPredictorError(kind: 'http' | 'exception' | 'timeout' | 'unavailable'): void {
    this.predictorErrors.inc({ kind });
  }
}
