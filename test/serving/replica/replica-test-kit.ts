import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Subject, filter, type Observable } from 'rxjs';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { MetricsTransport, TransportStats } from '../../../core/ports/metrics-transport.js';
import { startReplica, type Replica, type ReplicaOptions } from '../../../serving/replica/replica-server.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';

/** The fixture predictor whose behaviour each request picks with `?behave=`. */
export const BEHAVIOUR_PREDICTOR = fileURLToPath(new URL('./fixtures/behaviour-predictor.ts', import.meta.url));

/** A MetricsTransport that keeps what was published (the in-test implementation of the port). */
export class CollectingTransport implements MetricsTransport {
  readonly kind = 'test';
  readonly published: MetricSample[] = [];
  private readonly subject = new Subject<MetricSample>();
  async start(): Promise<void> {}
  async close(): Promise<void> {
    this.subject.complete();
  }
  publish(sample: MetricSample): void {
    this.published.push(sample);
    this.subject.next(sample);
  }
  samples$(api?: string): Observable<MetricSample> {
    return this.subject.pipe(filter((s) => api === undefined || s.api === api));
  }
  stats(): TransportStats {
    return { published: this.published.length, received: 0, invalid: 0, dropped: 0 };
  }
}

export interface CapturedLog {
  readonly log: Logger;
  lines(): Array<Record<string, unknown>>;
}

/** A pino logger writing JSON lines into memory (SG 7.4); worker-thread lines land here too. */
export function captureLog(level = 'info'): CapturedLog {
  const out: string[] = [];
  const log = pino({ level }, new Writable({ write: (c, _e, cb) => (out.push(String(c)), cb()) }));
  return {
    log,
    lines: () =>
      out
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface TestReplica extends AsyncDisposable {
  readonly replica: Replica;
  readonly target: { readonly port: number };
  readonly log: CapturedLog;
  readonly transport: CollectingTransport;
  /** A fresh temp folder for gate files, removed on dispose. */
  readonly dir: string;
  /** Creates `dir/name` (releases `?behave=waitfile&file=…` requests or a gated init). */
  release(name: string): void;
  gate(name: string): string;
}

/** Starts the behaviour predictor in a real replica on a random loopback port. */
export async function startBehaviourReplica(
  spec: ApiSpecOverrides = {},
  options: Partial<Omit<ReplicaOptions, 'spec' | 'log'>> = {},
): Promise<TestReplica> {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-replica-'));
  const log = captureLog();
  const transport = new CollectingTransport();
  const replica = await startReplica({
    spec: apiSpecFixture({ ...spec, predictor: { path: BEHAVIOUR_PREDICTOR, ...spec.predictor } }),
    log: log.log,
    transport,
    ...options,
  });
  return {
    replica,
    target: { port: replica.address.port! },
    log,
    transport,
    dir,
    gate: (name) => join(dir, name),
    release: (name) => writeFileSync(join(dir, name), ''),
    async [Symbol.asyncDispose]() {
      await replica.close({ graceMs: 0 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
