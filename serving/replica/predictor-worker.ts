import { Writable } from 'node:stream';
import { BroadcastChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import type { LoadedPredictor, PredictorHost } from '../../core/ports/predictor-backend.js';
import { executePrediction, type CancelState, type PredictOutcome } from './predictor-executor.js';
import { createPredictorRegistry } from './predictor-modules.js';
import { withRequestBatching } from './request-batcher.js';
import type { ControlMessage, PredictorWorkerData, WorkerMessage, WorkerTask } from './predictor-worker-protocol.js';

function post(m: WorkerMessage): void {
  parentPort!.postMessage(m);
}

/**
 * Body of one predictor worker thread (loaded by `predictor-worker-entry.js`, or from the sources by the
 * `.mjs` shim that registers tsx first): builds the predictor registry from the replica's plugin modules, constructs this thread's
 * predictor instance through it, reports `ready` (or `load-failed`, then throws so the worker ends),
 * and returns piscina's task handler. Logs go to the replica as lines; an unhandled rejection in
 * predictor code is logged, never fatal.
 */
export async function createWorkerHandler(): Promise<(task: WorkerTask) => Promise<PredictOutcome>> {
  const data = workerData as PredictorWorkerData;
  const log = pino(
    { level: data.logLevel, base: { pid: process.pid, ...data.logBindings, thread: threadId }, timestamp: pino.stdTimeFunctions.isoTime },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        post({ myelin: 'log', line: chunk.toString() });
        cb();
      },
    }),
  );
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled promise rejection in predictor code (ignored)');
  });

  let loaded: LoadedPredictor;
  // Only batch sizes travel to the replica: backends that run their own workers never load in a worker thread.
  const onDidRunBatch = (size: number): void => post({ myelin: 'batch', size });
  const host: PredictorHost = { onDidChangeCapacity: () => {}, onDidFail: () => {}, onDidRunBatch };
  try {
    const registry = await createPredictorRegistry(data.moduleSpecifiers, log);
    // server_side_batching for predictors that take lists batches per worker (as Cortex's per process).
    loaded = withRequestBatching(await registry.forSpec(data.spec).load(data.spec, log, host), data.spec, onDidRunBatch);
  } catch (err) {
    const e = err as { message?: string; code?: string; stack?: string };
    post({ myelin: 'load-failed', threadId, message: String(e?.message ?? err), code: e?.code, stack: e?.stack });
    throw err;
  }

  const active = new Map<number, WorkerTaskRun>();
  const channel = new BroadcastChannel(data.channel);
  channel.onmessage = (event) => {
    const m = (event as { data: ControlMessage }).data;
    if (m.type === 'cancel') {
      if (m.threadId !== threadId) return;
      active.get(m.seq)?.cancelNow(data.spec.predictor.timeoutMs);
    } else if (m.type === 'close') {
      void loaded
        .close()
        .catch((err: unknown) => log.error({ err }, 'predictor close failed'))
        .finally(() => {
          channel.close();
          post({ myelin: 'closed', threadId });
        });
    }
  };
  post({ myelin: 'ready', threadId, model: loaded.describe() });

  // Model cache counters travel to the replica's /metrics, throttled (a post per prediction would cost more than the counters are worth).
  let statsSentAt = 0;
  let statsTimer: NodeJS.Timeout | undefined;
  const sendStats = (): void => {
    if (!loaded.modelStats || statsTimer) return;
    // At most twice a second, and always once after the last prediction of a burst.
    const wait = Math.max(0, statsSentAt + 500 - Date.now());
    statsTimer = setTimeout(() => {
      statsTimer = undefined;
      statsSentAt = Date.now();
      if (loaded.modelStats) post({ myelin: 'model-stats', threadId, stats: loaded.modelStats() });
    }, wait);
    statsTimer.unref();
  };
  if (loaded.modelStats) post({ myelin: 'model-stats', threadId, stats: loaded.modelStats() });

  return (task: WorkerTask): Promise<PredictOutcome> => {
    const run = new WorkerTaskRun(task.seq, active);
    void executePrediction(loaded, task, log, data.spec.monitoring, run).then((o) => {
      run.onOutcome(o);
      sendStats();
    });
    return run.promise;
  };
}

/** One task in this worker: ends with its outcome, or at once when the replica cancels it (timed out). */
class WorkerTaskRun implements CancelState {
  cancelled = false;
  readonly promise: Promise<PredictOutcome>;
  readonly onOutcome: (o: PredictOutcome) => void;
  private resolve!: (o: PredictOutcome) => void;

  constructor(
    private readonly seq: number,
    private readonly active: Map<number, WorkerTaskRun>,
  ) {
    this.promise = new Promise<PredictOutcome>((resolve) => (this.resolve = resolve));
    this.onOutcome = WorkerTaskRun.settle.bind(undefined, this);
    active.set(seq, this);
  }

  cancelNow(timeoutMs: number): void {
    this.cancelled = true;
    this.active.delete(this.seq);
    this.resolve({ ok: false, failure: { kind: 'timeout', timeoutMs } });
  }

  private static settle(run: WorkerTaskRun, outcome: PredictOutcome): void {
    run.active.delete(run.seq);
    run.resolve(outcome);
  }
}
