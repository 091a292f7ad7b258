/**
 * What a model backend (onnx, tensorflow, the Python bridge, TypeScript predictors) asks for models:
 * the current tree of an API's models (listed in their store, checked against the predictor type's
 * layout) and a local path for one version (downloaded once per machine into the content-addressed
 * model cache, then shared by every replica). Bound in every thread that loads predictors
 * (serving/replica/predictor-modules.ts); implemented in serving/models/model-provider.ts on the
 * `ModelStore` adapters.
 */
import type { PredictorSpec } from '../config/api-spec.js';
import type { ModelFormat, ModelTreeEntry, ModelVersionRef } from '../predictor/model-tree.js';

export interface ModelDownloadProgress {
  /** The version's URL. */
  readonly url: string;
  /** Bytes on disk so far (including what a resumed transfer already had). */
  readonly bytes: number;
  /** Bytes of the whole version. */
  readonly total: number;
  /** Average transfer rate since this download started, bytes per second. */
  readonly rateBytesPerSec: number;
  readonly done: boolean;
}

export interface LocalModelVersion {
  /** The version's folder on local disk, or the model file for a single-file model. */
  readonly path: string;
  /** True when nothing had to be downloaded (a local path, or already in the machine cache). */
  readonly hit: boolean;
  /** Bytes of the version. */
  readonly bytes: number;
}

export const ModelProvider = Symbol('ModelProvider');
export interface ModelProvider {
  /**
   * The spec's models and versions as the store has them now (`discoverModels` over the store
   * registry). An empty array when the spec names no model. Throws `ModelStoreError` naming the URL.
   */
  discover(predictor: PredictorSpec, format?: ModelFormat): Promise<ModelTreeEntry[]>;
  /**
   * A local copy of one version: the path itself for local models; for remote ones the machine cache's
   * copy, downloaded first when missing (one download per machine however many replicas ask at once;
   * size and checksum checked; written atomically). Throws `ModelStoreError`.
   */
  localVersion(version: ModelVersionRef, options?: { readonly onProgress?: (p: ModelDownloadProgress) => void; readonly signal?: AbortSignal }): Promise<LocalModelVersion>;
  /**
   * Deletes the machine cache's copy of a version (`disk_cache_size` eviction); a no-op for local
   * models. A replica that still needs it later downloads it again.
   */
  dropLocalVersion(version: ModelVersionRef): Promise<void>;
  /**
   * Live reload saw a version appear or disappear (called by `ModelDirectory`): the replica's
   * provider turns it into a `model.version` event for the daemon. Optional.
   */
  announce?(change: { readonly model: string; readonly version: string; readonly change: 'added' | 'removed' }): void;
}
