import type { ModelStats } from '../../core/ports/predictor-backend.js';
import { sumModelStats } from './replica-metrics.js';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { entryFile } from '../../adapters/fs/package-root.js';
import { BroadcastChannel } from 'node:worker_threads';
import type { Piscina, PiscinaTask } from 'piscina';
import { pino } from 'pino';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { DeadlineQueue, type Deadline } from './deadline-queue.js';
import type { ExecutorEvents, PredictOutcome, PredictTask, PredictorExecutor } from './predictor-executor.js';
import { isWorkerMessage, type ControlMessage, type PredictorWorkerData, type WorkerMessage } from './predictor-worker-protocol.js';
import { slotsPerInstance } from './request-batcher.js';

/** The worker thread's entry: compiled `predictor-worker-entry.js`, or the source shim that registers tsx. */
const WORKER_ENTRY = pathToFileURL(entryFile(import.meta.url, 'predictor-worker-entry')).href;

type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;
type PoolWorker = Parameters<Balancer>[1][number];

export interface WorkerPoolOptions {
  readonly spec: ApiSpec;
  readonly log: Logger;
  readonly moduleSpecifiers: readonly string[];
  readonly events: ExecutorEvents;
  /**
   * After a timed-out prediction was cancelled, how long its worker may take to give the slot back
   * before it is judged blocked (a synchronous loop) and replaced (ms, default 1000).
   */
  readonly hungWorkerGraceMs?: number;
  /** How long `close()` waits for the instances' `close()` before ending the threads (ms, default 5000). */
  readonly closeTimeoutMs?: number;
}

/**
 * `processesPerReplica` predictor instances, one per worker thread (piscina 5), each taking
 * `threadsPerProcess` predictions at once. The replica's admission queue feeds them (one FIFO for the
 * whole replica), and the pool's load balancer gives each prediction to the least busy ready worker, so
 * a prediction never waits behind a busy worker while another is idle.
 *
 * Every worker constructs its instance through the predictor registry built from the same plugin
 * modules as the replica, so any backend works in a worker. A prediction past `predictor.timeoutMs` is
 * answered at once (504); its worker is told to drop it (the slot comes back), and a worker that does
 * not give the slot back within `hungWorkerGraceMs` is blocked: it is terminated and piscina starts a
 * replacement, which takes predictions once its instance is constructed. Predictions that were running on
 * a terminated worker end `unavailable` (503). A replacement that fails to load fails the executor.
 */
export class WorkerPoolExecutor implements PredictorExecutor {
  private readonly modelStatsByThread = new Map<number, ModelStats>();
  readonly mode = 'worker-threads' as const;
  private pool: Piscina | undefined;
  /** piscina's class, imported by `start` (an in-thread replica never loads it). */
  private Pool: typeof Piscina | undefined;
  private readonly channel: BroadcastChannel;
  private readonly channelName = `myelin-predictor-${randomUUID()}`;
  /** threadId → model description, for workers whose instance is constructed. */
  private readonly ready = new Map<number, Record<string, unknown>>();
  /** Prediction seq → the thread it was given to. */
  private readonly assigned = new Map<number, number>();
  private readonly closed = new Set<number>();
  private onDidClose: (() => void) | undefined;
  private seq = 0;
  private readonly deadlines: DeadlineQueue<WorkerRun>;
  private started = false;
  private closing = false;
  private startWaiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private readonly log: Logger;
  private readonly threads: number;
  private readonly perThread: number;
  private readonly hungWorkerGraceMs: number;
  private readonly closeTimeoutMs: number;

  constructor(private readonly options: WorkerPoolOptions) {
    this.log = options.log.child({ component: 'replica/worker-pool' });
    this.threads = options.spec.predictor.processesPerReplica;
    // threads_per_process, or max_batch_size under server-side batching (each worker batches on its own).
    this.perThread = slotsPerInstance(options.spec);
    this.hungWorkerGraceMs = options.hungWorkerGraceMs ?? 1000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.deadlines = new DeadlineQueue<WorkerRun>(options.spec.predictor.timeoutMs);
    this.channel = new BroadcastChannel(this.channelName);
    this.channel.unref();
  }

  async start(): Promise<void> {
    const Pool = (this.Pool = (await import('piscina')).Piscina);
    const workerData: PredictorWorkerData = {
      spec: this.options.spec,
      moduleSpecifiers: this.options.moduleSpecifiers,
      channel: this.channelName,
      logLevel: this.options.log.level,
      logBindings: this.options.log.bindings(),
    };
    const done = new Promise<void>((resolve, reject) => (this.startWaiter = { resolve, reject }));
    const pool = new Pool({
      filename: WORKER_ENTRY,
      minThreads: this.threads,
      maxThreads: this.threads,
      concurrentTasksPerWorker: this.perThread,
      idleTimeout: Infinity,
      // Atomics.wait would freeze a worker's event loop between tasks: postPredict, timers and the
      // control channel must keep running there.
      atomics: 'disabled',
      workerData,
      loadBalancer: (task, workers) => this.pick(task, workers),
    });
    pool.on('message', (m: unknown) => {
      if (isWorkerMessage(m)) this.onWorkerMessage(m);
    });
    pool.on('error', (err: unknown) => this.log.error({ err }, 'predictor worker failed'));
    // A worker that exited reports threadId -1, so the event cannot say which one went: reconcile.
    pool.on('workerDestroy', () => this.reconcileReady());
    this.pool = pool;
    return done;
  }

  capacity(): number {
    return this.ready.size * this.perThread;
  }

  run(task: PredictTask, releaseSlot: () => void): Promise<PredictOutcome> {
    const seq = ++this.seq;
    const run = new WorkerRun(this, seq, releaseSlot, this.options.spec.predictor.timeoutMs, this.deadlines);
    this.deadlines.add(run);
    this.pool!.run({
      requestId: task.requestId,
      payload: task.payload,
      query: task.query,
      headers: task.headers,
      debug: task.debug,
      seq,
      // Read by the load balancer (pick) to remember which thread got the prediction; not cloned.
      [this.Pool!.queueOptionsSymbol]: { seq },
    }).then(run.onOutcome, run.onPoolError);
    return run.promise;
  }

  /** The prediction `seq` timed out: tell its worker to drop it, and replace the worker if it cannot. */
  onTimedOut(seq: number): NodeJS.Timeout | undefined {
    const threadId = this.assigned.get(seq);
    if (threadId === undefined) return undefined;
    this.post({ type: 'cancel', threadId, seq });
    const timer = setTimeout(() => this.replaceBlockedWorker(threadId, seq), this.hungWorkerGraceMs);
    timer.unref();
    return timer;
  }

  /** The prediction `seq` is over in its worker (answered, dropped, or its worker is gone). */
  onSettled(seq: number): void {
    this.assigned.delete(seq);
  }

  /** Model counters summed over the workers (each reports after its predictions, at most twice a second; a gone worker's last report is kept). */
  modelStats(): ModelStats | undefined {
    if (this.modelStatsByThread.size === 0) return undefined;
    return sumModelStats([...this.modelStatsByThread.values()]);
  }

  describe(): Record<string, unknown> {
    const first = this.ready.values().next();
    return first.done ? {} : first.value;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const pool = this.pool;
    if (!pool) return;
    this.deadlines.clear();
    const waitingFor = [...this.ready.keys()];
    if (waitingFor.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.closeTimeoutMs);
        this.onDidClose = () => {
          if (waitingFor.every((id) => this.closed.has(id) || !this.ready.has(id))) {
            clearTimeout(timer);
            resolve();
          }
        };
        this.post({ type: 'close' });
      });
    }
    await pool.destroy();
    this.channel.close();
  }

  /** Least busy ready worker with a free slot; remembers which thread got the prediction. */
  private pick(task: PiscinaTask, workers: PoolWorker[]): PoolWorker | null {
    let best: PoolWorker | null = null;
    let bestUsage = this.perThread;
    for (const w of workers) {
      if (w.terminating || w.destroyed || !this.ready.has(w.id)) continue;
      const usage = w.currentUsage;
      if (usage < bestUsage) {
        best = w;
        bestUsage = usage;
        if (usage === 0) break;
      }
    }
    const seq = ((task as unknown as Record<symbol, unknown>)[this.Pool!.queueOptionsSymbol] as { seq?: number } | null)?.seq;
    if (best && seq !== undefined) this.assigned.set(seq, best.id);
    return best;
  }

  private onWorkerMessage(m: WorkerMessage): void {
    switch (m.myelin) {
      case 'log':
        writeLogLine(this.options.log, m.line);
        return;
      case 'ready':
        this.ready.set(m.threadId, m.model);
        this.log.info({ thread: m.threadId, ready: this.ready.size, of: this.threads }, 'predictor worker ready');
        this.options.events.onDidChangeCapacity(this.capacity());
        if (!this.started && this.ready.size === this.threads) {
          this.started = true;
          this.startWaiter?.resolve();
        }
        return;
      case 'load-failed': {
        const err = new PredictorError(m.message, { code: m.code });
        if (m.stack) err.stack = m.stack;
        this.log.error({ thread: m.threadId, err }, 'predictor worker failed to load');
        if (!this.started) {
          this.started = true;
          this.startWaiter?.reject(err);
        } else if (!this.closing) {
          this.options.events.onDidFail(err);
        }
        return;
      }
      case 'closed':
        this.closed.add(m.threadId);
        this.onDidClose?.();
        return;
      case 'batch':
        this.options.events.onDidRunBatch?.(m.size);
        return;
      case 'model-stats':
        this.modelStatsByThread.set(m.threadId, m.stats);
        return;
    }
  }

  /** Drops workers that are gone (exited, terminated) from the ready set. */
  private reconcileReady(): void {
    const alive = new Set((this.pool?.threads ?? []).map((t) => t.threadId));
    for (const id of [...this.ready.keys()]) if (!alive.has(id)) this.onWorkerGone(id);
  }

  private onWorkerGone(threadId: number): void {
    // Its counters stay in the sums; its models are no longer in memory.
    const last = this.modelStatsByThread.get(threadId);
    if (last) this.modelStatsByThread.set(threadId, { ...last, inMemory: 0 });
    if (!this.ready.delete(threadId)) return;
    if (!this.closing) {
      this.log.warn({ thread: threadId, ready: this.ready.size, of: this.threads }, 'predictor worker gone; a replacement is starting');
      this.options.events.onDidChangeCapacity(this.capacity());
    }
    this.onDidClose?.();
  }

  private replaceBlockedWorker(threadId: number, seq: number): void {
    if (this.closing || !this.assigned.has(seq)) return;
    const worker = this.pool?.threads.find((t) => t.threadId === threadId);
    if (!worker) return;
    this.log.warn({ thread: threadId, graceMs: this.hungWorkerGraceMs }, 'predictor worker blocked after a timeout; replacing it');
    // Out of the ready set at once, so no prediction is given to it while it ends.
    this.onWorkerGone(threadId);
    void worker.terminate();
  }

  private post(m: ControlMessage): void {
    this.channel.postMessage(m);
  }
}

/** Writes a worker's pino line to the replica logger's own destination, so both end up in one stream. */
function writeLogLine(log: Logger, line: string): void {
  const stream = (log as unknown as Record<symbol, { write(s: string): unknown } | undefined>)[pino.symbols.streamSym];
  stream?.write(line);
}

/**
 * One prediction given to the pool: answered by its outcome or by its deadline (the executor's
 * `DeadlineQueue`), whichever comes first; its slot is given back only when the worker is done with it
 * (or gone). A class with bound static callbacks rather than closures: this runs once per request.
 */
class WorkerRun implements Deadline {
  done = false;
  deadlineMs = 0;
  readonly promise: Promise<PredictOutcome>;
  readonly onOutcome: (o: PredictOutcome) => void;
  readonly onPoolError: (err: Error) => void;
  private resolve!: (o: PredictOutcome) => void;
  private answered = false;
  private hangTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: WorkerPoolExecutor,
    private readonly seq: number,
    private readonly releaseSlot: () => void,
    private readonly timeoutMs: number,
    /** Where its deadline is queued; told when it ends, so that a finished run is not kept until its deadline. */
    private readonly deadlines: DeadlineQueue<WorkerRun>,
  ) {
    this.promise = new Promise<PredictOutcome>((resolve) => (this.resolve = resolve));
    this.onOutcome = WorkerRun.settle.bind(undefined, this);
    this.onPoolError = WorkerRun.poolError.bind(undefined, this);
  }

  private static settle(run: WorkerRun, outcome: PredictOutcome): void {
    run.deadlines.finish(run);
    run.pool.onSettled(run.seq);
    if (run.hangTimer) clearTimeout(run.hangTimer);
    run.releaseSlot();
    if (run.answered) return;
    run.resolve(outcome);
  }

  private static poolError(run: WorkerRun, err: Error): void {
    WorkerRun.settle(run, { ok: false, failure: { kind: 'unavailable', message: `the predictor worker thread running this request stopped (${err.message}); retry` } });
  }

  expire(): void {
    this.answered = true;
    this.resolve({ ok: false, failure: { kind: 'timeout', timeoutMs: this.timeoutMs } });
    this.hangTimer = this.pool.onTimedOut(this.seq);
  }
}
