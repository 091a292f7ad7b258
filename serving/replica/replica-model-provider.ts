/**
 * The `ModelProvider` of a replica process: the store adapters and the machine cache
 * (serving/models/), plus reports for the daemon. Each download's progress (about once a second, and
 * when done) and each live-reload change go to the parent over the IPC channel as
 * `{ type: 'myelin.replica.event', event }` (`model.download`, `model.version`); the local orchestrator
 * checks them and the daemon publishes them. Without an IPC channel (a Kubernetes pod, `myelin
 * serve`, a worker thread) they are only logged.
 */
import { ContainerModule } from 'inversify';
import { REPLICA_EVENT } from '../../adapters/orchestrators/local/replica-launcher.js';
import { ModelStoreRegistry } from '../../core/contribution/model-store-registry.js';
import type { PredictorSpec } from '../../core/config/api-spec.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelProvider, type LocalModelVersion, type ModelDownloadProgress } from '../../core/ports/model-provider.js';
import type { ModelFormat, ModelTreeEntry, ModelVersionRef } from '../../core/predictor/model-tree.js';
import { defaultModelCacheRoot, ModelCache } from '../models/model-cache.js';
import { StoreModelProvider } from '../models/model-provider.js';
import { storageModules } from '../models/storage-modules.js';


/** How often a download's progress is reported as an event (the cache reports more often). */
const PROGRESS_EVENT_INTERVAL_MS = 1000;

export type ReplicaEventSink = (event: EngineEvent) => void;

/** Sends events to the parent process when there is an IPC channel; else drops them (they are logged). */
export function ipcEventSink(proc: NodeJS.Process = process): ReplicaEventSink | undefined {
  if (typeof proc.send !== 'function') return undefined;
  return (event) => {
    if (proc.connected) proc.send!({ type: REPLICA_EVENT, event }, undefined, undefined, () => {});
  };
}

export class ReportingModelProvider implements ModelProvider {
  constructor(
    private readonly inner: ModelProvider,
    private readonly log: Logger,
    private readonly sink: ReplicaEventSink | undefined,
    /** `api` and `replica` of the events (MYELIN_API, MYELIN_REPLICA_ID); the daemon overwrites both with what it knows. */
    private readonly identity: { readonly api: string; readonly replica?: string },
  ) {}

  discover(predictor: PredictorSpec, format?: ModelFormat): Promise<ModelTreeEntry[]> {
    return this.inner.discover(predictor, format);
  }

  localVersion(version: ModelVersionRef, options?: { readonly onProgress?: (p: ModelDownloadProgress) => void; readonly signal?: AbortSignal }): Promise<LocalModelVersion> {
    let last = 0;
    const onProgress = (p: ModelDownloadProgress): void => {
      options?.onProgress?.(p);
      const now = Date.now();
      if (!p.done && now - last < PROGRESS_EVENT_INTERVAL_MS) return;
      last = now;
      this.log.info({ url: p.url, bytes: p.bytes, total: p.total, rateBytesPerSec: Math.round(p.rateBytesPerSec), done: p.done }, 'model download');
      this.emit({ type: 'model.download', url: p.url, bytes: p.bytes, total: p.total, rateBytesPerSec: Math.round(p.rateBytesPerSec), done: p.done });
    };
    return this.inner.localVersion(version, { ...(options?.signal ? { signal: options.signal } : {}), onProgress });
  }

  dropLocalVersion(version: ModelVersionRef): Promise<void> {
    return this.inner.dropLocalVersion(version);
  }

  announce(change: { readonly model: string; readonly version: string; readonly change: 'added' | 'removed' }): void {
    this.emit({ type: 'model.version', model: change.model, version: change.version, change: change.change });
  }

  private emit(fields: Record<string, unknown>): void {
    if (!this.sink) return;
    const { api, replica } = this.identity;
    this.sink({ v: 1, api, t: Date.now(), ...(replica ? { replica } : {}), ...fields } as unknown as EngineEvent);
  }
}

/**
 * The storage adapters and a `ModelProvider` for the predictors of this thread: the machine cache at
 * `MYELIN_MODEL_CACHE` (set by the daemon to `<state>/models`), reporting to the parent over IPC.
 */
export function replicaModelModules(log: Logger, env: NodeJS.ProcessEnv = process.env): ContainerModule[] {
  const provider = new ContainerModule(({ bind }) => {
    bind(ModelStoreRegistry).toSelf().inSingletonScope();
    bind(ModelCache)
      .toDynamicValue((ctx) => new ModelCache(ctx.get(ModelStoreRegistry), { root: defaultModelCacheRoot(env), log }))
      .inSingletonScope();
    bind(ModelProvider)
      .toDynamicValue(
        (ctx) =>
          new ReportingModelProvider(new StoreModelProvider(ctx.get(ModelStoreRegistry), ctx.get(ModelCache)), log.child({ component: 'replica/models' }), ipcEventSink(), {
            api: env.MYELIN_API || 'unknown',
            ...(env.MYELIN_REPLICA_ID ? { replica: env.MYELIN_REPLICA_ID } : {}),
          }),
      )
      .inSingletonScope();
  });
  return [...storageModules, provider];
}
