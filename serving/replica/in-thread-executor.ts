import type { ModelStats } from '../../core/ports/predictor-backend.js';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { Logger } from '../../core/ports/logger.js';
import type { LoadedPredictor, PredictorHost } from '../../core/ports/predictor-backend.js';
import { DeadlineQueue, type Deadline } from './deadline-queue.js';
import { createPredictorRegistry } from './predictor-modules.js';
import { slotsPerInstance, withRequestBatching } from './request-batcher.js';
import {
  executePrediction,
  type CancelState,
  type ExecutorEvents,
  type PredictOutcome,
  type PredictTask,
  type PredictorExecutor,
} from './predictor-executor.js';

/**
 * One predictor instance in the replica's own thread, taking `threadsPerProcess` predictions at once
 * (the admission queue enforces that), or `capacity()` of a predictor that runs its own worker
 * processes (the Python bridge: processes × threads). The cheapest path for micro-models (no thread hop: see
 * docs/predictors.md for the numbers). A timed-out prediction is answered 504 and its slot given back at
 * once (a JavaScript promise cannot be stopped; its late result is dropped); a predictor that blocks
 * the thread synchronously blocks the whole replica, which is why `processesPerReplica > 1` runs in
 * worker threads.
 */
export class InThreadExecutor implements PredictorExecutor {
  readonly mode = 'in-thread' as const;
  private loaded: LoadedPredictor | undefined;
  private readonly ownLog: Logger;
  private readonly deadlines: DeadlineQueue<InThreadRun>;

  constructor(
    private readonly spec: ApiSpec,
    /** Bound to the API and replica; the predictor and its requests log through it (no `component` yet). */
    private readonly log: Logger,
    private readonly moduleSpecifiers: readonly string[],
    private readonly events: ExecutorEvents,
  ) {
    this.ownLog = log.child({ component: 'replica/in-thread-executor' });
    this.deadlines = new DeadlineQueue<InThreadRun>(spec.predictor.timeoutMs);
  }

  async start(): Promise<void> {
    const registry = await createPredictorRegistry(this.moduleSpecifiers, this.log);
    // A backend that runs its own workers (the Python bridge) reports its capacity as they come and go.
    const host: PredictorHost = {
      onDidChangeCapacity: () => this.events.onDidChangeCapacity(this.capacity()),
      onDidFail: (err) => this.events.onDidFail(err),
      onDidRunBatch: (size) => this.events.onDidRunBatch?.(size),
    };
    const loaded = await registry.forSpec(this.spec).load(this.spec, this.log, host);
    // server_side_batching for predictors that take lists (Python, TypeScript predictBatch).
    this.loaded = withRequestBatching(loaded, this.spec, host.onDidRunBatch);
    this.ownLog.info({ model: this.loaded.describe() }, 'predictor ready');
    this.events.onDidChangeCapacity(this.capacity());
  }

  capacity(): number {
    if (!this.loaded) return 0;
    return this.loaded.capacity ? this.loaded.capacity() : slotsPerInstance(this.spec);
  }

  run(task: PredictTask, releaseSlot: () => void): Promise<PredictOutcome> {
    const run = new InThreadRun(releaseSlot, this.spec.predictor.timeoutMs, this.deadlines);
    this.deadlines.add(run);
    void executePrediction(this.loaded!, task, this.log, this.spec.monitoring, run).then(run.onOutcome);
    return run.promise;
  }

  describe(): Record<string, unknown> {
    return this.loaded?.describe() ?? {};
  }

  modelStats(): ModelStats | undefined {
    return this.loaded?.modelStats?.();
  }

  async close(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = undefined;
    this.deadlines.clear();
    await loaded?.close();
  }
}

/**
 * One prediction in flight in the replica's thread: whichever comes first, its outcome or its deadline
 * (the executor's `DeadlineQueue`), answers it and gives the slot back. A class with bound static
 * callbacks rather than closures: this runs once per request.
 */
class InThreadRun implements CancelState, Deadline {
  cancelled = false;
  done = false;
  deadlineMs = 0;
  readonly promise: Promise<PredictOutcome>;
  private resolve!: (o: PredictOutcome) => void;
  readonly onOutcome: (o: PredictOutcome) => void;

  constructor(
    private readonly releaseSlot: () => void,
    private readonly timeoutMs: number,
    /** Where its deadline is queued; told when it ends, so that a finished run is not kept until its deadline. */
    private readonly deadlines: DeadlineQueue<InThreadRun>,
  ) {
    this.promise = new Promise<PredictOutcome>((resolve) => (this.resolve = resolve));
    this.onOutcome = InThreadRun.settle.bind(undefined, this);
  }

  private static settle(run: InThreadRun, outcome: PredictOutcome): void {
    if (run.cancelled) return;
    run.deadlines.finish(run);
    run.releaseSlot();
    run.resolve(outcome);
  }

  expire(): void {
    this.cancelled = true;
    this.releaseSlot();
    this.resolve({ ok: false, failure: { kind: 'timeout', timeoutMs: this.timeoutMs } });
  }
}
