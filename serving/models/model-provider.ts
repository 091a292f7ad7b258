/**
 * `ModelProvider` on the model store adapters and the machine cache: discovery lists through the
 * `ModelStoreRegistry` (and checks layouts with core/predictor/model-tree.ts), local copies come from
 * the `ModelCache` (one download per machine, checked, atomic).
 */
import type { ModelStoreRegistry } from '../../core/contribution/model-store-registry.js';
import type { PredictorSpec } from '../../core/config/api-spec.js';
import type { LocalModelVersion, ModelDownloadProgress, ModelProvider } from '../../core/ports/model-provider.js';
import { discoverModels, type ModelFormat, type ModelTreeEntry, type ModelVersionRef } from '../../core/predictor/model-tree.js';
import type { ModelCache } from './model-cache.js';

export class StoreModelProvider implements ModelProvider {
  constructor(
    private readonly registry: ModelStoreRegistry,
    private readonly cache: ModelCache,
  ) {}

  /** The spec's models as the stores list them now; throws `ModelStoreError` naming the URL. */
  discover(predictor: PredictorSpec, format?: ModelFormat): Promise<ModelTreeEntry[]> {
    return discoverModels(predictor, (url) => this.registry.get(url).list(url), format);
  }

  /** The path itself for a local version, else the machine cache's copy (downloaded when missing). */
  localVersion(version: ModelVersionRef, options?: { readonly onProgress?: (p: ModelDownloadProgress) => void; readonly signal?: AbortSignal }): Promise<LocalModelVersion> {
    return this.cache.get(version, options);
  }

  /** Deletes the cache's copy; a no-op for local versions and versions not cached. */
  dropLocalVersion(version: ModelVersionRef): Promise<void> {
    return this.cache.drop(version);
  }
}
