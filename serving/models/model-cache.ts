/**
 * The machine-wide model cache: one local copy of each remote model version, shared by the daemon
 * (which prefetches at deploy) and every replica process on the machine.
 *
 * Layout under the root (`defaultModelCacheRoot`):
 * ```
 * v1/<key>/…             a complete version: its files under their keys (a single-file version: the
 *                        file under its base name). Never partial: it appears by one `rename`.
 * v1/.partial/<key>/…    a download in progress (or interrupted: resumed from here)
 * v1/.locks/<key>.lock   who downloads <key>: {pid, host, started}, created with O_EXCL
 * v1/.trash/…            versions being deleted
 * ```
 * `<key>` is content-addressed: the sha256 of the version's URL and its sorted object list (key, size,
 * ETag, MD5), so a changed object is a new key and never a stale copy.
 *
 * A download checks every file's size and, where the store gave one, its MD5 (not for multipart
 * ETags). A failed or cut transfer is retried (3 attempts per file, short backoff) and resumed from the
 * partial file's size (`ModelStore.read({ offset })`); a mismatch deletes the file and downloads it
 * again; after the last attempt it throws `ModelStoreError` `ENG_MODEL_CORRUPT` (or the store's error).
 *
 * One download per machine: concurrent callers in one process share one promise; other processes find
 * the lock file and wait (polling) until the version appears, reporting progress from the partial
 * files. A lock whose holder is gone (same host, `process.kill(pid, 0)` says ESRCH) or whose heartbeat
 * (the holder touches it every few seconds) is older than `staleLockMs` is taken over, keeping the
 * partial data. Local versions (`file` scheme) are never copied.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, truncate, unlink, utimes } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import type { ModelStoreResolver } from '../../core/contribution/model-store-registry.js';
import type { Logger } from '../../core/ports/logger.js';
import type { LocalModelVersion, ModelDownloadProgress } from '../../core/ports/model-provider.js';
import { isRemoteModelUrl, ModelStoreError, type StoredObject } from '../../core/ports/model-store.js';
import { versionLocalPath, type ModelVersionRef } from '../../core/predictor/model-tree.js';
import { localModelPath } from '../../adapters/storage/fs/fs-model-store.js';

/** The cache root: `MYELIN_MODEL_CACHE`, else `$XDG_CACHE_HOME/myelin/models`, else `~/.cache/myelin/models`. */
export function defaultModelCacheRoot(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.MYELIN_MODEL_CACHE) return resolve(env.MYELIN_MODEL_CACHE);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), 'myelin', 'models');
  return join(env.HOME || homedir(), '.cache', 'myelin', 'models');
}

export interface ModelCacheOptions {
  /** The cache root; default `defaultModelCacheRoot(process.env)`. */
  readonly root?: string;
  readonly log: Logger;
  /** Attempts per file (transfer failures and checksum mismatches alike); default 3. */
  readonly attempts?: number;
  /** Wait before the first retry, doubled for each further one (ms); default 250. */
  readonly retryDelayMs?: number;
  /** How often a waiting process looks for the version or a stale lock (ms); default 100. */
  readonly lockPollMs?: number;
  /** A lock not touched for this long is stale even when its pid seems alive (ms); default 120 000. */
  readonly staleLockMs?: number;
  /** Least time between two progress reports (ms); default 250 (4 per second), plus one at the end. */
  readonly progressIntervalMs?: number;
  /** Files at least this large get their MD5 computed on a worker thread; default 16 MiB. */
  readonly workerHashMinBytes?: number;
  /**
   * `md5` (default): check every file's size and, where the store gave one, its MD5. `size`: sizes
   * only, for machines where hashing competes for the only free core (MD5 costs about as much CPU as
   * receiving the bytes). Default from `MYELIN_MODEL_VERIFY`.
   */
  readonly verify?: 'md5' | 'size';
}

export interface CacheRequestOptions {
  readonly onProgress?: (p: ModelDownloadProgress) => void;
  /** Abandons this caller's wait; the download itself stops when no caller waits for it any more. */
  readonly signal?: AbortSignal;
}

/** The lock file's content. */
interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
  /** When the holder's process started (ms since the epoch): tells this process from an earlier one that had the same pid. */
  readonly processStarted?: number;
}

/** This process's start, the same in every thread of it (to within rounding). */
function processStartedAt(): number {
  return Math.round(Date.now() - process.uptime() * 1000);
}

/** One download in this process, shared by every caller asking for the same key. */
interface Inflight {
  readonly promise: Promise<LocalModelVersion>;
  readonly listeners: Set<(p: ModelDownloadProgress) => void>;
  readonly abort: AbortController;
  waiters: number;
}

const HEARTBEAT_MS = 5_000;

/** A `/`-separated store key as a relative path, refusing keys that would leave the folder. */
function safeRelative(url: string, key: string): string[] {
  const parts = key.split('/');
  if (key.startsWith('/') || parts.some((p) => p === '..' || p === '.' || p === '' || p.includes('\\') || p.includes('\0'))) {
    throw new ModelStoreError(url, `${url}: the store lists an object named "${key}", which cannot be stored as a file safely`, { code: 'ENG_MODEL_STORE' });
  }
  return parts;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((res, rej) => {
    if (signal?.aborted) {
      rej(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      rej(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const isErrno = (err: unknown, ...codes: string[]): boolean => codes.includes((err as NodeJS.ErrnoException)?.code ?? '');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return !isErrno(err, 'ESRCH');
  }
}

/** Reports progress at most every `intervalMs`, and always the last report. */
class ProgressMeter {
  private lastAt = -Infinity;
  private readonly startedAt = performance.now();
  private readonly startBytes: number;
  bytes: number;

  constructor(
    private readonly url: string,
    private readonly total: number,
    initialBytes: number,
    private readonly intervalMs: number,
    private readonly emit: (p: ModelDownloadProgress) => void,
  ) {
    this.bytes = initialBytes;
    this.startBytes = initialBytes;
  }

  add(n: number): void {
    this.bytes += n;
    this.maybe(false);
  }

  set(bytes: number): void {
    this.bytes = bytes;
    this.maybe(false);
  }

  maybe(done: boolean): void {
    const now = performance.now();
    if (!done && now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? Math.max(0, this.bytes - this.startBytes) / seconds : 0;
    this.emit({ url: this.url, bytes: this.bytes, total: this.total, rateBytesPerSec: rate, done });
  }
}

/** See the file comment. Safe to use from many processes on one root; one instance per process is enough. */
export class ModelCache {
  readonly root: string;
  private readonly log: Logger;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly lockPollMs: number;
  private readonly staleLockMs: number;
  private readonly progressIntervalMs: number;
  private readonly workerHashMinBytes: number;
  private readonly verify: 'md5' | 'size';
  private readonly inflight = new Map<string, Inflight>();
  private readonly host = hostname();

  constructor(
    private readonly stores: ModelStoreResolver,
    options: ModelCacheOptions,
  ) {
    this.root = resolve(options.root ?? defaultModelCacheRoot());
    this.log = options.log.child({ component: 'models/model-cache' });
    this.attempts = Math.max(1, options.attempts ?? 3);
    this.retryDelayMs = options.retryDelayMs ?? 250;
    this.lockPollMs = options.lockPollMs ?? 100;
    this.staleLockMs = options.staleLockMs ?? 120_000;
    this.progressIntervalMs = options.progressIntervalMs ?? 250;
    this.workerHashMinBytes = options.workerHashMinBytes ?? WORKER_HASH_MIN_BYTES;
    this.verify = options.verify ?? (process.env.MYELIN_MODEL_VERIFY === 'size' ? 'size' : 'md5');
  }

  /** The content address of a version: hex sha256 over its URL and sorted (key, size, ETag, MD5) list. */
  static key(version: Pick<ModelVersionRef, 'url' | 'objects'>): string {
    const objects = [...version.objects]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((o) => [o.key, o.size, o.etag ?? '', o.md5 ?? '']);
    return createHash('sha256').update(JSON.stringify({ url: version.url, objects })).digest('hex');
  }

  /** The folder a complete remote version lives in (whether or not it is there now). */
  versionDir(version: Pick<ModelVersionRef, 'url' | 'objects'>): string {
    return join(this.root, 'v1', ModelCache.key(version));
  }

  private partialDir(key: string): string {
    return join(this.root, 'v1', '.partial', key);
  }

  private lockPath(key: string): string {
    return join(this.root, 'v1', '.locks', `${key}.lock`);
  }

  /** Where an object of a version is stored inside `dir`. */
  private objectPath(version: ModelVersionRef, dir: string, o: StoredObject): string {
    if (o.key === '') return versionLocalPath(version, dir);
    return join(dir, ...safeRelative(version.url, o.key));
  }

  /**
   * A local copy of `version`: the path itself for a local one (never copied), else the cache's copy,
   * downloaded when missing (see the file comment). `hit` is true when nothing had to be fetched or
   * waited for. Throws `ModelStoreError` (the store's code, or `ENG_MODEL_CORRUPT`), or the signal's reason.
   */
  async get(version: ModelVersionRef, options: CacheRequestOptions = {}): Promise<LocalModelVersion> {
    const bytes = version.objects.reduce((n, o) => n + o.size, 0);
    if (!isRemoteModelUrl(version.url)) {
      const path = localModelPath(version.url);
      return { path: version.objects.length === 1 && version.objects[0].key === '' ? path.replace(/\/+$/, '') : path, hit: true, bytes };
    }
    options.signal?.throwIfAborted();
    const key = ModelCache.key(version);
    const dir = this.versionDir(version);
    if (await this.complete(version, dir)) return { path: versionLocalPath(version, dir), hit: true, bytes };

    let entry = this.inflight.get(key);
    if (!entry) {
      const abort = new AbortController();
      const listeners = new Set<(p: ModelDownloadProgress) => void>();
      const promise = this.fetchShared(version, key, dir, abort.signal, (p) => {
        for (const l of listeners) l(p);
      }).finally(() => this.inflight.delete(key));
      // The shared promise may settle with nobody listening (every caller aborted).
      promise.catch(() => undefined);
      entry = { promise, listeners, abort, waiters: 0 };
      this.inflight.set(key, entry);
    }
    return this.join(entry, options);
  }

  /** Waits for a shared download as one of its callers. */
  private join(entry: Inflight, options: CacheRequestOptions): Promise<LocalModelVersion> {
    const { onProgress, signal } = options;
    entry.waiters++;
    if (onProgress) entry.listeners.add(onProgress);
    return new Promise<LocalModelVersion>((resolvePromise, reject) => {
      let settled = false;
      const leave = (): void => {
        if (settled) return;
        settled = true;
        entry.waiters--;
        if (onProgress) entry.listeners.delete(onProgress);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        leave();
        if (entry.waiters === 0) entry.abort.abort(signal!.reason);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.promise.then(
        (v) => {
          if (settled) return;
          leave();
          resolvePromise(v);
        },
        (err) => {
          if (settled) return;
          leave();
          reject(err);
        },
      );
    });
  }

  /** True when the complete copy is there and its files have the listed sizes (a cheap check per hit). */
  private async complete(version: ModelVersionRef, dir: string): Promise<boolean> {
    try {
      await stat(dir);
    } catch {
      return false;
    }
    try {
      for (const o of version.objects) {
        const s = await stat(this.objectPath(version, dir, o));
        if (s.size !== o.size) throw new ModelStoreError(version.url, `cached ${o.key || 'file'} has ${s.size} bytes, the store lists ${o.size}`, { code: 'ENG_MODEL_CORRUPT' });
      }
      return true;
    } catch (err) {
      // Damaged behind our back (a file removed or truncated): download it again.
      this.log.warn({ url: version.url, dir, err }, 'cached model damaged, downloading it again');
      await this.removeDir(dir);
      return false;
    }
  }

  /** Takes the machine lock (or waits for whoever holds it), then downloads. */
  private async fetchShared(version: ModelVersionRef, key: string, dir: string, signal: AbortSignal, emit: (p: ModelDownloadProgress) => void): Promise<LocalModelVersion> {
    const bytes = version.objects.reduce((n, o) => n + o.size, 0);
    const lock = this.lockPath(key);
    await mkdir(dirname(lock), { recursive: true });
    let waited = false;
    let waitMeter: ProgressMeter | undefined;
    for (;;) {
      signal.throwIfAborted();
      if (await this.complete(version, dir)) return { path: versionLocalPath(version, dir), hit: !waited, bytes };
      const mine = await this.tryLock(lock);
      if (mine) {
        try {
          // Someone may have finished between our look and our lock.
          if (await this.complete(version, dir)) return { path: versionLocalPath(version, dir), hit: !waited, bytes };
          await this.download(version, key, dir, signal, emit);
          return { path: versionLocalPath(version, dir), hit: false, bytes };
        } finally {
          await this.unlock(lock, mine);
        }
      }
      if (!waited) {
        waited = true;
        this.log.info({ url: version.url, lock }, 'another process is downloading this model; waiting');
        waitMeter = new ProgressMeter(version.url, bytes, 0, this.progressIntervalMs, emit);
      }
      if (await this.staleLock(lock)) continue;
      waitMeter!.set(await this.partialBytes(version, key));
      await sleep(this.lockPollMs, signal);
    }
  }

  /** Creates the lock with O_EXCL; its text when this process now holds it, else undefined. */
  private async tryLock(lock: string): Promise<string | undefined> {
    const info: LockInfo = { pid: process.pid, host: this.host, started: new Date().toISOString(), processStarted: processStartedAt() };
    const text = JSON.stringify(info);
    try {
      const fh = await open(lock, 'wx');
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
      return text;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return undefined;
      throw new ModelStoreError(lock, `cannot create the model cache lock ${lock}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async unlock(lock: string, text: string): Promise<void> {
    try {
      // Only our own lock: a takeover (after we looked stale) is someone else's now.
      if ((await readFile(lock, 'utf8')) === text) await unlink(lock);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) this.log.warn({ lock, err }, 'cannot remove the model cache lock');
    }
  }

  /**
   * When the lock's holder is gone, removes the lock (so the caller can take it) and says true. One
   * process at a time decides, under `<lock>.takeover` (O_EXCL), and only removes the lock whose text
   * it judged stale, so two waiters never both take over.
   */
  private async staleLock(lock: string): Promise<boolean> {
    let text: string;
    let mtimeMs: number;
    try {
      text = await readFile(lock, 'utf8');
      mtimeMs = (await stat(lock)).mtimeMs;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return true; // released: try again at once
      throw err;
    }
    let info: Partial<LockInfo> = {};
    try {
      info = JSON.parse(text) as LockInfo;
    } catch {
      // Empty or half-written: its creator is between `open` and `write`, or died there; the heartbeat decides.
    }
    const dead =
      (info.host === this.host && typeof info.pid === 'number' && (info.pid === process.pid ? !this.heldInThisProcess(lock, info) : !pidAlive(info.pid))) ||
      Date.now() - mtimeMs > this.staleLockMs;
    if (!dead) return false;
    const guard = `${lock}.takeover`;
    let fh;
    try {
      fh = await open(guard, 'wx');
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // Someone else is deciding; a guard left by a crashed decider is removed after the heartbeat time.
      try {
        if (Date.now() - (await stat(guard)).mtimeMs > this.staleLockMs) await unlink(guard);
      } catch {
        // gone already
      }
      return false;
    }
    try {
      await fh.close();
      let now: string | undefined;
      try {
        now = await readFile(lock, 'utf8');
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      if (now !== undefined && now !== text) return false; // taken over already
      if (now !== undefined) await unlink(lock);
      this.log.warn({ lock, holder: info }, 'taking over a stale model download lock (its process is gone); resuming its partial data');
      return true;
    } finally {
      await unlink(guard).catch(() => undefined);
    }
  }

  /**
   * True when this process holds the lock: this cache instance downloads its key right now, or another
   * thread of this process does (each predictor worker thread has its own cache instance; its lock
   * carries this process's start time, so only the heartbeat can make it stale). A lock with our pid
   * from an earlier process is stale.
   */
  private heldInThisProcess(lock: string, info: Partial<LockInfo>): boolean {
    const key = lock.slice(lock.lastIndexOf('/') + 1).replace(/\.lock$/, '');
    if (this.held.has(key)) return true;
    return typeof info.processStarted === 'number' && Math.abs(info.processStarted - processStartedAt()) < 2000;
  }

  private readonly held = new Set<string>();

  /** Bytes in the partial files of a version (what another process downloaded so far). */
  private async partialBytes(version: ModelVersionRef, key: string): Promise<number> {
    const partial = this.partialDir(key);
    let n = 0;
    for (const o of version.objects) {
      try {
        n += Math.min(o.size, (await stat(this.objectPath(version, partial, o))).size);
      } catch {
        // not started
      }
    }
    return n;
  }

  /** Downloads every object into the partial folder, checks it, and renames the folder into place. */
  private async download(version: ModelVersionRef, key: string, dir: string, signal: AbortSignal, emit: (p: ModelDownloadProgress) => void): Promise<void> {
    const lock = this.lockPath(key);
    const partial = this.partialDir(key);
    const store = this.stores.get(version.url);
    const total = version.objects.reduce((n, o) => n + o.size, 0);
    this.held.add(key);
    const heartbeat = setInterval(() => {
      const now = new Date();
      void utimes(lock, now, now).catch(() => undefined);
    }, HEARTBEAT_MS);
    heartbeat.unref();
    try {
      await mkdir(partial, { recursive: true });
      const already = await this.partialBytes(version, key);
      const meter = new ProgressMeter(version.url, total, already, this.progressIntervalMs, emit);
      const t0 = performance.now();
      this.log.info({ url: version.url, files: version.objects.length, bytes: total, resumedBytes: already, key }, 'downloading model');
      for (const o of version.objects) await this.downloadObject(store, version, partial, o, meter, signal);
      if (version.objects.length === 0) await mkdir(partial, { recursive: true });
      await mkdir(dirname(dir), { recursive: true });
      try {
        await rename(partial, dir);
      } catch (err) {
        if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
        // Already there (a takeover raced a slow holder): keep that one.
        await this.removeDir(partial);
      }
      meter.set(total);
      meter.maybe(true);
      const seconds = (performance.now() - t0) / 1000;
      this.log.info({ url: version.url, bytes: total, seconds: Math.round(seconds * 1000) / 1000 }, 'model downloaded');
    } finally {
      clearInterval(heartbeat);
      this.held.delete(key);
    }
  }

  /** One object, with retries, resume and checks; the file ends complete and verified in `partial`. */
  private async downloadObject(
    store: ReturnType<ModelStoreResolver['get']>,
    version: ModelVersionRef,
    partial: string,
    o: StoredObject,
    meter: ProgressMeter,
    signal: AbortSignal,
  ): Promise<void> {
    const file = this.objectPath(version, partial, o);
    const objectUrl = o.key === '' ? version.url : `${version.url.replace(/\/?$/, '/')}${o.key}`;
    await mkdir(dirname(file), { recursive: true });
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      signal.throwIfAborted();
      if (attempt > 1) await sleep(this.retryDelayMs * 2 ** (attempt - 2), signal);
      let have = await fileSize(file);
      // The meter's bytes of every other object: this one's share is set from the disk below.
      const others = meter.bytes - Math.min(have, o.size);
      if (have > o.size) {
        // Longer than the object: not a prefix of it.
        await truncate(file, 0);
        have = 0;
        meter.set(others);
      }
      // The MD5 covers the whole file: hash what a previous attempt left, then the rest as it arrives.
      const hash = o.md5 && this.verify === 'md5' ? (o.size >= this.workerHashMinBytes ? new WorkerMd5() : new InlineMd5()) : undefined;
      try {
        if (hash && have > 0) await hash.prefix(file, have);
        if (have < o.size) {
          try {
            const source = await store.read(version.url, o, { offset: have, signal });
            await pipeline(
              source,
              async function* (chunks: AsyncIterable<Uint8Array>) {
                for await (const c of chunks) {
                  if (hash) await hash.update(c);
                  meter.add(c.length);
                  yield c;
                }
              },
              createWriteStream(file, { flags: have > 0 ? 'a' : 'w' }),
              { signal },
            );
          } catch (err) {
            if (signal.aborted) throw signal.reason;
            // The store's own verdicts are final; a cut transfer (or a network error) is retried.
            if (err instanceof ModelStoreError && (err.code === 'ENG_MODEL_DENIED' || err.code === 'ENG_MODEL_NOT_FOUND')) throw err;
            lastError = err;
            const got = await fileSize(file);
            // Chunks counted but never written are not on disk: the disk is the truth.
            meter.set(others + got);
            this.log.warn({ url: objectUrl, attempt, attempts: this.attempts, bytesOnDisk: got, err }, 'model transfer failed; resuming');
            continue;
          }
        }
        const size = await fileSize(file);
        if (size < o.size) {
          // The stream ended early without an error: resume from there.
          lastError = new ModelStoreError(objectUrl, `${objectUrl}: the transfer ended at ${size} of ${o.size} bytes`);
          this.log.warn({ url: objectUrl, attempt, bytesOnDisk: size, expected: o.size }, 'model transfer ended early; resuming');
          continue;
        }
        const digest = size === o.size && hash ? await hash.digest() : undefined;
        const problem = size !== o.size ? `size: expected ${o.size} bytes, got ${size}` : digest !== undefined && digest !== o.md5 ? `MD5: expected ${o.md5}, got ${digest}` : undefined;
        if (!problem) return;
        lastError = new ModelStoreError(objectUrl, `${objectUrl}: the downloaded file ${o.key || '(the model file)'} is corrupt after ${attempt} attempt${attempt > 1 ? 's' : ''} (${problem})`, {
          code: 'ENG_MODEL_CORRUPT',
        });
        this.log.warn({ url: objectUrl, attempt, attempts: this.attempts, problem }, 'downloaded model file does not match; downloading it again');
        await rm(file, { force: true });
        meter.set(others);
      } finally {
        hash?.close();
      }
    }
    if (lastError instanceof ModelStoreError) throw lastError;
    throw new ModelStoreError(objectUrl, `${objectUrl}: download failed after ${this.attempts} attempts: ${(lastError as Error)?.message ?? String(lastError)}`, { cause: lastError });
  }

  /**
   * Deletes the cached copy of `version` (renamed to a trash name first, so no reader sees a half
   * deleted folder, then removed). A no-op for local versions and for versions not in the cache;
   * never throws for a missing entry (other failures are logged).
   */
  async drop(version: Pick<ModelVersionRef, 'url' | 'objects'>): Promise<void> {
    if (!isRemoteModelUrl(version.url)) return;
    await this.removeDir(this.versionDir(version));
  }

  private async removeDir(dir: string): Promise<void> {
    const trash = join(this.root, 'v1', '.trash', `${dir.slice(dir.lastIndexOf('/') + 1)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(dirname(trash), { recursive: true });
      await rename(dir, trash);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) this.log.warn({ dir, err }, 'cannot move a cached model to the trash');
      return;
    }
    await rm(trash, { recursive: true, force: true }).catch((err) => this.log.warn({ trash, err }, 'cannot delete a cached model'));
  }

  /** Versions in the cache (their keys), for tools and tests. */
  async keys(): Promise<string[]> {
    try {
      return (await readdir(join(this.root, 'v1'))).filter((n) => !n.startsWith('.')).sort();
    } catch {
      return [];
    }
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
}

/** Files at least this large are hashed on a worker thread, in parallel with the transfer (the default). */
const WORKER_HASH_MIN_BYTES = 16 * 1024 * 1024;

/** An MD5 over a file's prefix on disk and then the chunks that follow it. */
interface Md5Hasher {
  prefix(path: string, length: number): Promise<void>;
  update(chunk: Uint8Array): Promise<void> | void;
  /** Hex digest of everything so far (once). */
  digest(): Promise<string>;
  close(): void;
}

class InlineMd5 implements Md5Hasher {
  private readonly hash: Hash = createHash('md5');
  async prefix(path: string, length: number): Promise<void> {
    for await (const c of createReadStream(path, { start: 0, end: length - 1 })) this.hash.update(c as Buffer);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  async digest(): Promise<string> {
    return this.hash.digest('hex');
  }
  close(): void {}
}

/**
 * The worker's side of `WorkerMd5` (CommonJS, run with `eval`): hashes a prefix read from disk, then
 * each transferred chunk, acknowledging every 4 MiB so the sender can bound what is in flight.
 */
const MD5_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createReadStream } = require('node:fs');
const hash = createHash('md5');
let done = 0;
let acked = 0;
let chain = Promise.resolve();
parentPort.on('message', (m) => {
  chain = chain.then(() => handle(m)).catch((err) => parentPort.postMessage({ error: String((err && err.message) || err) }));
});
async function handle(m) {
  if (m.prefix !== undefined) {
    for await (const c of createReadStream(m.prefix, { start: 0, end: m.length - 1 })) hash.update(c);
    done += m.length;
    parentPort.postMessage({ acked: done });
  } else if (m.data !== undefined) {
    hash.update(new Uint8Array(m.data));
    done += m.data.byteLength;
    if (done - acked >= 4194304) { acked = done; parentPort.postMessage({ acked: done }); }
  } else if (m.end) {
    parentPort.postMessage({ digest: hash.digest('hex') });
  }
}
`;

/**
 * MD5 on a worker thread: hashing a large model costs about as much CPU as receiving it, so on a fast
 * link the transfer would wait for the hash; here the main thread only copies each chunk (one memcpy)
 * and sends it. At most `MAX_IN_FLIGHT` bytes wait for the worker: `update` waits beyond that.
 */
class WorkerMd5 implements Md5Hasher {
  private static readonly MAX_IN_FLIGHT = 32 * 1024 * 1024;
  private readonly worker = new Worker(MD5_WORKER_SOURCE, { eval: true });
  private sent = 0;
  private acked = 0;
  private failure: Error | undefined;
  private waiters: Array<() => void> = [];
  private digestWaiter: { resolve: (d: string) => void; reject: (e: Error) => void } | undefined;

  constructor() {
    this.worker.on('message', (m: { acked?: number; digest?: string; error?: string }) => {
      if (m.error !== undefined) this.fail(new Error(`MD5 worker: ${m.error}`));
      if (m.acked !== undefined) this.acked = m.acked;
      if (m.digest !== undefined) this.digestWaiter?.resolve(m.digest);
      this.wake();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('MD5 worker exited')));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.digestWaiter?.reject(this.failure);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.failure) throw this.failure;
  }

  async prefix(path: string, length: number): Promise<void> {
    this.sent += length;
    this.worker.postMessage({ prefix: path, length });
    await this.until(() => this.acked >= this.sent);
  }

  async update(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    // An ArrayBuffer of exactly this chunk, transferred (a Buffer's `.buffer` may be a shared pool).
    const copy = new ArrayBuffer(chunk.byteLength);
    new Uint8Array(copy).set(chunk);
    this.sent += copy.byteLength;
    this.worker.postMessage({ data: copy }, [copy]);
    if (this.sent - this.acked > WorkerMd5.MAX_IN_FLIGHT) await this.until(() => this.sent - this.acked <= WorkerMd5.MAX_IN_FLIGHT / 2);
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.worker.postMessage({ end: true });
    });
  }

  close(): void {
    this.failure ??= new Error('MD5 worker closed');
    void this.worker.terminate();
  }
}
