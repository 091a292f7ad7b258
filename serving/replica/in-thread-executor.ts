import type { ApiSpec } from '../../core/config/api-spec.js';
import type { Logger } from '../../core/ports/logger.js';
import type { LoadedPredictor } from '../../core/ports/predictor-backend.js';
import { createPredictorRegistry } from './predictor-modules.js';
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
 * (the admission queue enforces that). The cheapest path for micro-models (no thread hop: see
 * docs/predictors.md for the numbers). A timed-out prediction is answered 504 and its slot given back at
 * once (a JavaScript promise cannot be stopped; its late result is dropped); a predictor that blocks
 * the thread synchronously blocks the whole replica, which is why `processesPerReplica > 1` runs in
 * worker threads.
 */
export class InThreadExecutor implements PredictorExecutor {
  readonly mode = 'in-thread' as const;
  private loaded: LoadedPredictor | undefined;
  private readonly ownLog: Logger;

  constructor(
    private readonly spec: ApiSpec,
    /** Bound to the API and replica; the predictor and its requests log through it (no `component` yet). */
    private readonly log: Logger,
    private readonly moduleSpecifiers: readonly string[],
    private readonly events: ExecutorEvents,
  ) {
    this.ownLog = log.child({ component: 'replica/in-thread-executor' });
  }

  async start(): Promise<void> {
    const registry = await createPredictorRegistry(this.moduleSpecifiers, this.log);
    this.loaded = await registry.get(this.spec.predictor.type).load(this.spec, this.log);
    this.ownLog.info({ model: this.loaded.describe() }, 'predictor ready');
    this.events.onDidChangeCapacity(this.capacity());
  }

  capacity(): number {
    return this.loaded ? this.spec.predictor.threadsPerProcess : 0;
  }

  run(task: PredictTask, releaseSlot: () => void): Promise<PredictOutcome> {
    const loaded = this.loaded!;
    const timeoutMs = this.spec.predictor.timeoutMs;
    const cancel: CancelState = { cancelled: false };
    return new Promise<PredictOutcome>((resolve) => {
      const timer = setTimeout(() => {
        cancel.cancelled = true;
        releaseSlot();
        resolve({ ok: false, failure: { kind: 'timeout', timeoutMs } });
      }, timeoutMs);
      // The server keeps the process alive while it serves; a pending timeout alone must not.
      timer.unref();
      void executePrediction(loaded, task, this.log, this.spec.monitoring, cancel).then((outcome) => {
        if (cancel.cancelled) return;
        clearTimeout(timer);
        releaseSlot();
        resolve(outcome);
      });
    });
  }

  describe(): Record<string, unknown> {
    return this.loaded?.describe() ?? {};
  }

  async close(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = undefined;
    await loaded?.close();
  }
}
