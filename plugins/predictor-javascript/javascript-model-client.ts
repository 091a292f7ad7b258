/**
 * `ctx.modelClient` of a TypeScript predictor with models (`predictor.models`): Cortex's
 * `python_client` for TypeScript. `await modelClient.getModel(name?, version?)` returns what the
 * class's `loadModel(path)` made of that version's local copy, kept in memory as `ManagedModels`
 * keeps it (every version, or `cache_size` of them, LRU).
 *
 * A model handed to a prediction stays in memory until that prediction ends: each `predict` runs in an
 * AsyncLocalStorage scope that collects the leases its `getModel` calls took, released when it
 * returns. A `getModel` outside any prediction (in `init()`) takes no lease.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ManagedModels, ModelLease } from '../../core/predictor/managed-models.js';
import type { PredictorModelClient } from '../../core/predictor/predictor-contract.js';

export class JavascriptModelClient implements PredictorModelClient {
  private readonly scope = new AsyncLocalStorage<ModelLease<unknown>[]>();

  constructor(private readonly models: () => ManagedModels<unknown>) {}

  async getModel<M = unknown>(modelName?: string | null, modelVersion?: string | number | null): Promise<M> {
    const lease = await this.models().acquire(modelName, modelVersion);
    const leases = this.scope.getStore();
    if (leases) leases.push(lease);
    else lease.release();
    return lease.model as M;
  }

  listModels(): Array<{ name: string; versions: string[] }> {
    return this.models()
      .info()
      .map((m) => ({ name: m.name, versions: m.versions.map((v) => v.version) }));
  }

  /** Runs one prediction (or a batch) with its own lease scope; the leases end when it settles. */
  async withinPrediction<T>(fn: () => Promise<T>): Promise<T> {
    const leases: ModelLease<unknown>[] = [];
    try {
      return await this.scope.run(leases, fn);
    } finally {
      for (const l of leases) l.release();
    }
  }
}
