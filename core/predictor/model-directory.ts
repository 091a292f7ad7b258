/**
 * The live tree of one API's models in a replica (or worker): what the store holds now, how a request
 * picks a version (Cortex's rules, reference/cortex.md §4–5), local copies through the machine cache
 * with `disk_cache_size` as an LRU, and live reload: the store is listed again every `pollMs` (10 s as
 * Cortex's cron, `MYELIN_MODEL_POLL_MS`), and each version that appeared or disappeared is announced.
 *
 * A poll that fails (store unreachable, a layout broken mid-upload) changes nothing: the versions
 * being served stay until a poll sees them gone.
 */
import { HttpError } from '../errors.js';
import type { PredictorSpec } from '../config/api-spec.js';
import type { Logger } from '../ports/logger.js';
import type { LocalModelVersion, ModelDownloadProgress, ModelProvider } from '../ports/model-provider.js';
import { modelFormatOf, SINGLE_MODEL_NAME, type ModelFormat, type ModelTreeEntry, type ModelVersionRef } from './model-tree.js';

/** Environment variable: live-reload poll interval in ms (default 10000; 0 turns polling off). */
export const MODEL_POLL_ENV = 'MYELIN_MODEL_POLL_MS';
export const DEFAULT_MODEL_POLL_MS = 10_000;

export interface ModelChange {
  readonly model: string;
  readonly version: string;
  readonly change: 'added' | 'removed';
}

export interface ModelSelection {
  readonly name: string;
  readonly version: string;
  readonly ref: ModelVersionRef;
  readonly entry: ModelTreeEntry;
}

export interface ModelDirectoryOptions {
  readonly predictor: PredictorSpec;
  readonly provider: ModelProvider;
  readonly format?: ModelFormat;
  /** Default: `MYELIN_MODEL_POLL_MS` of the process (the daemon passes its own to replicas), else 10 s. 0: no live reload. */
  readonly pollMs?: number;
  /** Versions kept on local disk (LRU; Cortex's `disk_cache_size`); absent: no limit. Local models never count. */
  readonly diskCacheSize?: number;
  /** myelin extension `disk_cache_bytes`: also at most this many downloaded bytes on disk. */
  readonly diskCacheBytes?: number;
  readonly log: Logger;
  readonly onDownload?: (p: ModelDownloadProgress) => void;
}

/** Poll interval: `MYELIN_MODEL_POLL_MS` of the process environment (MYELIN_ names are reserved in `predictor.env`), else the default. */
export function modelPollMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[MODEL_POLL_ENV];
  if (raw === undefined || raw === '') return DEFAULT_MODEL_POLL_MS;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_MODEL_POLL_MS;
}

/** Identity of a version's content: a changed object list (a re-uploaded version) is a different version. */
function contentId(ref: ModelVersionRef): string {
  return `${ref.url}\n${ref.objects.map((o) => `${o.key}\t${o.size}\t${o.etag ?? o.md5 ?? ''}\t${o.lastModified ?? ''}`).join('\n')}`;
}

function namesOf(tree: readonly ModelTreeEntry[]): string[] {
  return tree.map((m) => m.name);
}

const versionKey = (model: string, version: string): string => `${model}\u0000${version}`;

export class ModelDirectory {
  private tree: ModelTreeEntry[];
  private readonly listeners = new Set<(c: ModelChange) => void>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;
  /** Remote versions with a local copy, least recently used first (content ids). */
  private readonly onDisk = new Map<string, { ref: ModelVersionRef; bytes: number }>();
  /** Versions being fetched or loaded right now: never dropped from disk meanwhile. */
  private readonly pinned = new Map<string, number>();
  private diskDrops = 0;

  private constructor(
    private readonly options: ModelDirectoryOptions,
    private readonly format: ModelFormat,
    initial: ModelTreeEntry[],
  ) {
    this.tree = initial;
  }

  /** Lists the store once (throws `ModelStoreError` naming the URL), then polls for changes. */
  static async open(options: ModelDirectoryOptions): Promise<ModelDirectory> {
    const format = options.format ?? modelFormatOf(options.predictor.type);
    const tree = await options.provider.discover(options.predictor, format);
    const dir = new ModelDirectory(options, format, tree);
    const pollMs = options.pollMs ?? modelPollMs();
    if (pollMs > 0) {
      dir.timer = setInterval(() => void dir.poll(), pollMs);
      dir.timer.unref();
    }
    return dir;
  }

  models(): readonly ModelTreeEntry[] {
    return this.tree;
  }

  /** True when the API names its models (`paths` or `dir`) rather than one `_cortex_default`. */
  isMultiModel(): boolean {
    return !(this.tree.length === 1 && this.tree[0].name === SINGLE_MODEL_NAME);
  }

  /**
   * Picks a version: for the single model (`model_path`, `models.path`) the name is ignored, as in
   * Cortex; with `paths` or `dir` a missing name is a 400 listing the models; `version` is digits or `latest` (default). Throws `HttpError` 400 (malformed
   * or missing) or 404 (unknown model or version), naming what exists.
   */
  resolve(name?: string | null, version?: string | number | null): ModelSelection {
    let entry: ModelTreeEntry | undefined;
    // Only the messages list the names: not computed on every prediction.
    if (!this.isMultiModel()) entry = this.tree[0];
    else if (name === undefined || name === null || name === '') {
      throw new HttpError(400, `model_name was not specified; this API serves several models, choose one of: ${namesOf(this.tree).join(', ') || '(none yet)'}`);
    } else {
      entry = this.tree.find((m) => m.name === name);
      if (!entry) throw new HttpError(404, `model "${name}" is not served by this API (models: ${namesOf(this.tree).join(', ') || 'none'})`);
    }
    if (entry === undefined || entry.versions.length === 0) throw new HttpError(404, `model "${name ?? ''}" has no version available`);
    if (version === undefined || version === null || version === '' || version === 'latest') {
      const ref = entry.versions[entry.versions.length - 1];
      return { name: entry.name, version: ref.version, ref, entry };
    }
    const text = String(version);
    if (!/^\d+$/.test(text)) throw new HttpError(400, `model_version must be a non-negative integer or "latest" (got ${JSON.stringify(version)})`);
    const wanted = String(BigInt(text));
    const ref = entry.versions.find((v) => v.version === wanted);
    if (!ref) {
      const model = entry.name === SINGLE_MODEL_NAME ? 'the model' : `model "${entry.name}"`;
      throw new HttpError(404, `${model} has no version ${wanted} (versions: ${entry.versions.map((v) => v.version).join(', ')})`);
    }
    return { name: entry.name, version: ref.version, ref, entry };
  }

  /** The version's content is still what the store lists (it was not removed or re-uploaded). */
  isCurrent(model: string, ref: ModelVersionRef): boolean {
    const entry = this.tree.find((m) => m.name === model);
    const now = entry?.versions.find((v) => v.version === ref.version);
    return now !== undefined && contentId(now) === contentId(ref);
  }

  /** A local copy of `ref` (downloaded into the machine cache on a miss); keeps at most `diskCacheSize` remote versions on disk. */
  local(ref: ModelVersionRef): Promise<LocalModelVersion> {
    return this.withLocal(ref, async (local) => local);
  }

  /**
   * Runs `use` on a local copy of `ref` (downloaded on a miss); the copy is not deleted by the disk
   * cache until `use` settles (a load reading its files).
   */
  async withLocal<T>(ref: ModelVersionRef, use: (local: LocalModelVersion) => Promise<T>): Promise<T> {
    const id = contentId(ref);
    this.pinned.set(id, (this.pinned.get(id) ?? 0) + 1);
    try {
      const local = await this.options.provider.localVersion(ref, this.options.onDownload ? { onProgress: this.options.onDownload } : {});
      if (!isLocalUrl(ref.url)) {
        this.onDisk.delete(id);
        this.onDisk.set(id, { ref, bytes: local.bytes });
      }
      let out: T;
      try {
        out = await use(local);
      } catch (err) {
        // Another replica's disk_cache_size may have deleted the shared copy while this load read it:
        // when asking again has to download it, the load is tried once more on the fresh copy.
        if (isLocalUrl(ref.url)) throw err;
        const again = await this.options.provider.localVersion(ref, this.options.onDownload ? { onProgress: this.options.onDownload } : {});
        if (again.hit) throw err;
        this.options.log.warn({ err, url: ref.url }, 'the model copy changed while it loaded; loading the fresh copy');
        out = await use(again);
      }
      if (!isLocalUrl(ref.url)) await this.trimDisk();
      return out;
    } finally {
      const n = (this.pinned.get(id) ?? 1) - 1;
      if (n <= 0) this.pinned.delete(id);
      else this.pinned.set(id, n);
    }
  }

  /**
   * Keeps `ref`'s disk copy from `disk_cache_size` until the returned function is called (a load that
   * reads it elsewhere: a Python process). Idempotent release.
   */
  pin(ref: ModelVersionRef): () => void {
    const id = contentId(ref);
    this.pinned.set(id, (this.pinned.get(id) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pinned.get(id) ?? 1) - 1;
      if (n <= 0) this.pinned.delete(id);
      else this.pinned.set(id, n);
      void this.trimDisk();
    };
  }

  /** Remote versions with a local copy (for stats). */
  onDiskCount(): number {
    return this.onDisk.size;
  }

  diskEvictions(): number {
    return this.diskDrops;
  }

  /** Drops least recently used remote copies beyond the limits; pinned ones (being fetched or loaded, the caller's included) stay. */
  private async trimDisk(): Promise<void> {
    const limit = this.options.diskCacheSize ?? Infinity;
    const byteLimit = this.options.diskCacheBytes ?? Infinity;
    let bytes = [...this.onDisk.values()].reduce((n, e) => n + e.bytes, 0);
    for (const [id, { ref, bytes: size }] of this.onDisk) {
      if (this.onDisk.size <= limit && bytes <= byteLimit) break;
      if (this.pinned.has(id)) continue;
      this.onDisk.delete(id);
      bytes -= size;
      this.diskDrops += 1;
      try {
        await this.options.provider.dropLocalVersion(ref);
      } catch (err) {
        this.options.log.warn({ err, url: ref.url }, 'could not delete a model version from the disk cache');
      }
    }
  }

  onDidChange(listener: (change: ModelChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lists the store again and announces what changed; one poll at a time. Exposed for tests. */
  poll(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    let next: ModelTreeEntry[];
    try {
      next = await this.options.provider.discover(this.options.predictor, this.format);
    } catch (err) {
      this.options.log.warn({ err }, 'live reload: could not list the models; keeping the versions being served');
      return;
    }
    if (this.closed) return;
    const before = new Map<string, ModelVersionRef>();
    for (const m of this.tree) for (const v of m.versions) before.set(versionKey(m.name, v.version), v);
    const after = new Map<string, ModelVersionRef>();
    for (const m of next) for (const v of m.versions) after.set(versionKey(m.name, v.version), v);
    const changes: ModelChange[] = [];
    for (const [k, v] of before) {
      const now = after.get(k);
      if (now === undefined || contentId(now) !== contentId(v)) changes.push({ model: k.split('\u0000')[0], version: v.version, change: 'removed' });
    }
    for (const [k, v] of after) {
      const was = before.get(k);
      if (was === undefined || contentId(was) !== contentId(v)) changes.push({ model: k.split('\u0000')[0], version: v.version, change: 'added' });
    }
    this.tree = next;
    for (const c of changes) {
      this.options.log.info(c, c.change === 'added' ? 'live reload: model version added' : 'live reload: model version removed');
      this.options.provider.announce?.(c);
      for (const l of this.listeners) {
        try {
          l(c);
        } catch (err) {
          this.options.log.error({ err }, 'model change listener failed');
        }
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.listeners.clear();
  }
}

function isLocalUrl(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || url.toLowerCase().startsWith('file://');
}
