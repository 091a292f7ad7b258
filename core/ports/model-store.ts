/**
 * Where models live: a local folder, S3 (or any S3-compatible server), HTTPS, Google Cloud Storage.
 * One `ModelStoreContribution` per URL scheme, each from its own adapter module
 * (`adapters/storage/<kind>/`); `ModelStoreRegistry` picks one by the URL's scheme (a path without one
 * is `file`). A store only lists and reads: downloading, checking and caching are the model cache's
 * job (serving/models/model-cache.ts), so every store gets retries, resume and atomic writes for free.
 */
import { EngineError } from '../errors.js';

/** One object (file) at or below a listed URL. */
export interface StoredObject {
  /**
   * Path below the listed URL, `/`-separated, without a leading `/` (`1/model.onnx`); `''` when the
   * listed URL names this object itself (`s3://bucket/iris.onnx`).
   */
  readonly key: string;
  readonly size: number;
  /** The store's entity tag without quotes, when it gives one (S3, HTTPS). */
  readonly etag?: string;
  /** Hex MD5 of the whole content when the store knows it (S3 single-part ETag, GCS `md5Hash`, `Content-MD5`). */
  readonly md5?: string;
  /** Last modification, ms since the epoch, when known. */
  readonly lastModified?: number;
}

export interface ModelStore {
  /**
   * Every object at or below `url`, recursively: the object itself when `url` names one (key `''`),
   * else each object under the prefix `url` (with a `/` added when missing). An empty array when there
   * is nothing there. Sorted by key. Throws `ModelStoreError` (`ENG_MODEL_DENIED` for 401/403,
   * `ENG_MODEL_STORE` for anything else the store answers or a network failure).
   */
  list(url: string, signal?: AbortSignal): Promise<StoredObject[]>;
  /**
   * The bytes of one object listed under `url`, from byte `offset` on (for resuming). Throws
   * `ModelStoreError` (`ENG_MODEL_NOT_FOUND` when it is gone). The stream may fail midway (a cut
   * connection): the caller retries from where it got.
   */
  read(url: string, object: StoredObject, options?: { readonly offset?: number; readonly signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>>;
}

/** A store for some URL schemes (`file`, `s3`, `https`, `gs`, …), contributed by an adapter module. */
export const ModelStoreContribution = Symbol('ModelStoreContribution');
export interface ModelStoreContribution extends ModelStore {
  /** The adapter's name (`fs`, `s3`, `https`). */
  readonly kind: string;
  /** URL schemes it serves, lower case, without `:` (`['s3']`, `['https', 'http', 'gs']`). A local path is `file`. */
  readonly schemes: readonly string[];
}

/**
 * A model cannot be found, read or used. Codes: `ENG_MODEL_NOT_FOUND` (nothing at the URL),
 * `ENG_MODEL_DENIED` (the store refused the credentials), `ENG_MODEL_LAYOUT` (files are there but not
 * as the predictor type needs them; the message shows the expected tree), `ENG_MODEL_CORRUPT` (size or
 * checksum mismatch after download), `ENG_MODEL_SCHEME` (no store for the URL's scheme),
 * `ENG_MODEL_STORE` (anything else).
 */
export class ModelStoreError extends EngineError {
  /** The URL the problem is about. */
  readonly url: string;
  constructor(url: string, message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'ENG_MODEL_STORE', message, options);
    this.url = url;
  }
}

const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** The scheme of a model URL, lower case (`s3`, `https`, `gs`, `file`); `file` for a plain path. */
export function modelUrlScheme(url: string): string {
  const m = URL_SCHEME.exec(url);
  return m ? m[1].toLowerCase() : 'file';
}

/** True for URLs a store must download (anything but a local path or `file://`). */
export function isRemoteModelUrl(url: string): boolean {
  return modelUrlScheme(url) !== 'file';
}

/** `url` with exactly one trailing `/` (a prefix); a local path likewise. */
export function asPrefix(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Joins a prefix URL (or path) and a `/`-separated key. */
export function joinModelUrl(base: string, key: string): string {
  if (key === '') return base;
  return `${asPrefix(base)}${key}`;
}
