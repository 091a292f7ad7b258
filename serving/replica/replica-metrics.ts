import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** `myelin_batch_size` buckets: powers of two up to 1024, Cortex's largest max_batch_size. */
export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** What the gauges read at scrape time. */
export interface ReplicaGaugeSource {
  counts(): { readonly inFlight: number; readonly queued: number };
  isReady(): boolean;
}

/**
 * The replica's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * several replicas in one process and the daemon's own metrics stay apart), labelled `api` and
 * `replica`. Served as text at GET `/metrics`.
 */
export class ReplicaMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'code_class'>;
  private readonly latency: Histogram;
  private readonly predictorErrors: Counter<'kind'>;
  private readonly batchSize: Histogram;

  constructor(labels: { readonly api: string; readonly replica: string }, source: ReplicaGaugeSource) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ ...labels });
    this.requests = new Counter({
      name: 'myelin_replica_requests_total',
      help: 'Prediction requests answered, by status class (2xx includes 1xx/3xx)',
      labelNames: ['code_class'],
      registers,
    });
    for (const c of ['2xx', '4xx', '5xx']) this.requests.inc({ code_class: c }, 0);
    this.latency = new Histogram({
      name: 'myelin_replica_request_duration_seconds',
      help: 'Prediction request latency, from arrival to answer (seconds)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
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
    new Gauge({
      name: 'myelin_replica_ready',
      help: '1 when every predictor instance is constructed and the replica takes predictions',
      registers,
      collect() {
        this.set(source.isReady() ? 1 : 0);
      },
    });
  }

  recordResponse(status: number, latencyMs: number): void {
    this.requests.inc({ code_class: status >= 500 ? '5xx' : status >= 400 ? '4xx' : '2xx' });
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
