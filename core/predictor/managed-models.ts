/**
 * The model versions a replica holds in memory, over a `ModelDirectory` (reference/cortex.md §5):
 *
 * - Without `cache_size`: every version is loaded at start (before the replica is ready), versions that
 *   appear in the store are loaded as they appear, removed ones are unloaded — Cortex's live reloading.
 * - With `cache_size`: nothing is loaded at start; a request loads its version (downloading it into the
 *   machine cache first when needed) and the least recently used versions beyond `cache_size` are
 *   unloaded. Unlike Cortex (a background sweep every 10 s that could overshoot), eviction runs as soon
 *   as a load completes or a lease ends, so the limit holds except while every version is in use.
 *
 * A version in use by a prediction (a `ModelLease` not yet released) is never unloaded, not by
 * eviction and not by live reload: it goes once its last lease ends.
 */
import { PredictorError } from '../errors.js';
import type { Logger } from '../ports/logger.js';
import type { ModelStats } from '../ports/predictor-backend.js';
import type { ModelChange, ModelDirectory, ModelSelection } from './model-directory.js';
import type { ModelVersionRef } from './model-tree.js';

export interface ModelLease<M> {
  readonly name: string;
  readonly version: string;
  readonly model: M;
  /** Ends this use; idempotent. */
  release(): void;
}

export type VersionState = 'loaded' | 'loading' | 'not loaded';

export interface ManagedVersionInfo {
  readonly version: string;
  /** Seconds since the epoch (the store's last modification), as Cortex's `timestamps`. */
  readonly timestamp: number;
  readonly state: VersionState;
}
export interface ManagedModelInfo<M> {
  readonly name: string;
  readonly versions: readonly ManagedVersionInfo[];
  /** The latest version's loaded model, when it is in memory. */
  readonly latest?: M;
}

export interface ManagedModelsOptions<M> {
  readonly directory: ModelDirectory;
  /** Loads one version from its local path (folder or file). Throws `PredictorError`. */
  load(path: string, selection: ModelSelection): Promise<M>;
  release(model: M): Promise<void>;
  /** Versions kept in memory (Cortex's `cache_size`): absent means all, loaded eagerly. */
  readonly cacheSize?: number;
  /** myelin extension `cache_bytes`: also at most this many bytes in memory (a version counts its size on disk). */
  readonly cacheBytes?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

interface Slot<M> {
  readonly key: string;
  readonly name: string;
  readonly version: string;
  /** The listing it was loaded from; replaced by a later listing of the same content (`acquire`). */
  ref: ModelVersionRef;
  model?: M;
  /** Size of the version on disk (counted against `cacheBytes`). */
  bytes: number;
  loading?: Promise<M>;
  leases: number;
  lastUsed: number;
  /** Removed from the store (or replaced): unloaded once unused, never handed out again. */
  stale: boolean;
  /** What a lease of it calls when it ends (made on the first lease). */
  endLease?: () => void;
}

const keyOf = (name: string, version: string): string => `${name}\u0000${version}`;

export class ManagedModels<M> {
  private readonly slots = new Map<string, Slot<M>>();
  private readonly retiring = new Set<Slot<M>>();
  private readonly unsubscribe: () => void;
  private readonly now: () => number;
  private closed = false;
  private counters = { hits: 0, misses: 0, evictions: 0, loads: 0, loadMsSum: 0 };

  private constructor(private readonly options: ManagedModelsOptions<M>) {
    this.now = options.now ?? Date.now;
    this.unsubscribe = options.directory.onDidChange((c) => this.onChange(c));
  }

  /**
   * Without `cacheSize`, loads every version first (unless `deferLoad`: then call `loadAll` when the
   * loader is ready); a version that cannot be loaded fails the open (and releases what was loaded).
   */
  static async open<M>(options: ManagedModelsOptions<M>, openOptions: { readonly deferLoad?: boolean } = {}): Promise<ManagedModels<M>> {
    const mm = new ManagedModels(options);
    if (!openOptions.deferLoad) {
      try {
        await mm.loadAll();
      } catch (err) {
        await mm.close();
        throw err;
      }
    }
    return mm;
  }

  /** Without `cacheSize`: loads every version not in memory yet (throws on the first that fails). With it: nothing (loads are on demand). */
  async loadAll(): Promise<void> {
    if (this.options.cacheSize !== undefined) return;
    for (const m of this.options.directory.models()) {
      for (const v of m.versions) (await this.acquire(m.name, v.version)).release();
    }
  }

  get directory(): ModelDirectory {
    return this.options.directory;
  }

  get eager(): boolean {
    return this.options.cacheSize === undefined;
  }

  /**
   * `acquire` without a promise when the version is in memory and still what the store lists (the
   * common case: a prediction then waits for no extra microtask); undefined when `acquire` has to load
   * it (a copy the store replaced is retired here, as `acquire` would). Throws as `acquire` does
   * (closed, `HttpError` 400/404).
   */
  acquireLoaded(name?: string | null, version?: string | number | null): ModelLease<M> | undefined {
    if (this.closed) throw new PredictorError('the models are closed (the replica is stopping)', { code: 'ENG_PREDICTOR_CLOSED' });
    const slot = this.currentSlot(this.options.directory.resolve(name, version));
    if (slot?.model === undefined) return undefined;
    this.counters.hits += 1;
    slot.leases += 1;
    slot.lastUsed = this.now();
    return this.leaseOf(slot, slot.model);
  }

  /**
   * The model of a request: `name`/`version` as `ModelDirectory.resolve` takes them (throws `HttpError`
   * 400/404 naming what exists). Loads the version first when it is not in memory.
   */
  async acquire(name?: string | null, version?: string | number | null): Promise<ModelLease<M>> {
    if (this.closed) throw new PredictorError('the models are closed (the replica is stopping)', { code: 'ENG_PREDICTOR_CLOSED' });
    const sel = this.options.directory.resolve(name, version);
    const key = keyOf(sel.name, sel.version);
    let slot = this.currentSlot(sel);
    if (slot?.model !== undefined) this.counters.hits += 1;
    else this.counters.misses += 1;
    if (!slot) {
      slot = { key, name: sel.name, version: sel.version, ref: sel.ref, bytes: 0, leases: 0, lastUsed: this.now(), stale: false };
      this.slots.set(key, slot);
    }
    slot.leases += 1;
    slot.lastUsed = this.now();
    let model: M;
    try {
      model = slot.model ?? (await this.loadSlot(slot, sel));
    } catch (err) {
      slot.leases -= 1;
      if (this.slots.get(key) === slot && slot.model === undefined && slot.leases === 0) this.slots.delete(key);
      // Retired while it loaded, and the load failed: nothing is left to unload.
      if (slot.model === undefined && slot.leases === 0) this.retiring.delete(slot);
      throw err;
    }
    return this.leaseOf(slot, model);
  }

  /**
   * The slot of `sel` when it holds what the store lists now, else undefined (a copy the store replaced
   * is retired). Every poll lists the store again (new objects): when the content is the same, the slot
   * takes the new listing's object, so later requests compare identities rather than rebuilding both
   * content ids (two strings per object) on every request after the first poll.
   */
  private currentSlot(sel: ModelSelection): Slot<M> | undefined {
    const slot = this.slots.get(keyOf(sel.name, sel.version));
    if (slot === undefined || slot.ref === sel.ref) return slot;
    if (this.options.directory.isCurrent(sel.name, slot.ref)) {
      slot.ref = sel.ref;
      return slot;
    }
    this.retire(slot);
    return undefined;
  }

  private leaseOf(slot: Slot<M>, model: M): ModelLease<M> {
    // One callback per slot, not per lease: this runs once per prediction.
    slot.endLease ??= () => this.onLeaseEnded(slot);
    return new Lease(slot.name, slot.version, model, slot.endLease);
  }

  /** A lease of `slot` ended (`Lease.release`, once per lease). */
  private onLeaseEnded(slot: Slot<M>): void {
    slot.leases -= 1;
    slot.lastUsed = this.now();
    if (slot.stale) this.maybeUnload(slot);
    else if (this.options.cacheSize !== undefined) void this.evict();
  }

  private loadSlot(slot: Slot<M>, sel: ModelSelection): Promise<M> {
    slot.loading ??= (async () => {
      try {
        let t0 = 0;
        // The disk copy stays while the load reads it (disk_cache_size waits for it).
        const { local, model } = await this.options.directory.withLocal(sel.ref, async (l) => {
          t0 = performance.now();
          return { local: l, model: await this.options.load(l.path, sel) };
        });
        slot.bytes = local.bytes;
        this.counters.loads += 1;
        this.counters.loadMsSum += performance.now() - t0;
        slot.model = model;
        if (this.closed || slot.stale) {
          // Closed or removed while loading: hand it to the waiting leases, then unload.
          queueMicrotask(() => this.maybeUnload(slot));
        }
        this.options.log.info({ model: slot.name, version: slot.version, ms: Math.round(performance.now() - t0), downloaded: !local.hit }, 'model version loaded');
        void this.evict();
        return model;
      } finally {
        slot.loading = undefined;
      }
    })();
    return slot.loading;
  }

  /** Unloads least recently used, unused versions beyond `cacheSize` (and `cacheBytes`). */
  private async evict(): Promise<void> {
    const limit = this.options.cacheSize;
    if (limit === undefined) return;
    const byteLimit = this.options.cacheBytes ?? Infinity;
    const inMemory = [...this.slots.values()].filter((s) => s.model !== undefined);
    let count = inMemory.length;
    let bytes = inMemory.reduce((n, s) => n + s.bytes, 0);
    if (count <= limit && bytes <= byteLimit) return;
    for (const s of inMemory.sort((a, b) => a.lastUsed - b.lastUsed)) {
      if (count <= limit && bytes <= byteLimit) break;
      // The list is a snapshot and unloads await: skip what another eviction or live reload took meanwhile.
      if (this.slots.get(s.key) !== s || s.model === undefined) continue;
      if (s.leases > 0 || s.loading) continue;
      count -= 1;
      bytes -= s.bytes;
      this.counters.evictions += 1;
      this.slots.delete(s.key);
      this.options.log.info({ model: s.name, version: s.version }, 'model version evicted from memory (cache_size)');
      await this.unload(s);
    }
  }

  private onChange(c: ModelChange): void {
    const slot = this.slots.get(keyOf(c.model, c.version));
    if (c.change === 'removed') {
      if (slot) this.retire(slot);
      return;
    }
    // Added: loaded now when every version is kept in memory (Cortex's live reloading), else on first use.
    if (this.eager && !this.closed) {
      void this.acquire(c.model, c.version).then(
        (lease) => lease.release(),
        (err) => this.options.log.error({ err, model: c.model, version: c.version }, 'live reload: could not load the new model version'),
      );
    }
  }

  private retire(slot: Slot<M>): void {
    slot.stale = true;
    if (this.slots.get(slot.key) === slot) this.slots.delete(slot.key);
    this.retiring.add(slot);
    this.maybeUnload(slot);
  }

  private maybeUnload(slot: Slot<M>): void {
    if (slot.leases > 0 || slot.loading || slot.model === undefined) return;
    this.retiring.delete(slot);
    if (this.slots.get(slot.key) === slot) this.slots.delete(slot.key);
    void this.unload(slot);
  }

  private async unload(slot: Slot<M>): Promise<void> {
    const m = slot.model;
    slot.model = undefined;
    if (m === undefined) return;
    try {
      await this.options.release(m);
    } catch (err) {
      this.options.log.warn({ err, model: slot.name, version: slot.version }, 'could not release a model version');
    }
  }

  /** Every model of the directory with its versions, their timestamps and whether each is in memory. */
  info(): ManagedModelInfo<M>[] {
    return this.options.directory.models().map((m) => {
      const versions = m.versions.map((v) => {
        const s = this.slots.get(keyOf(m.name, v.version));
        const state: VersionState = s?.model !== undefined ? 'loaded' : s?.loading ? 'loading' : 'not loaded';
        return { version: v.version, timestamp: v.timestamp, state };
      });
      const latest = m.versions.length ? this.slots.get(keyOf(m.name, m.versions[m.versions.length - 1].version))?.model : undefined;
      return latest === undefined ? { name: m.name, versions } : { name: m.name, versions, latest };
    });
  }

  /** Any loaded model (for a signature when the latest is not in memory). */
  anyLoaded(name: string): M | undefined {
    for (const s of this.slots.values()) if (s.name === name && s.model !== undefined) return s.model;
    return undefined;
  }

  stats(): ModelStats {
    const inMemory = [...this.slots.values()].filter((s) => s.model !== undefined).length + [...this.retiring].filter((s) => s.model !== undefined).length;
    return { ...this.counters, loadMsSum: Math.round(this.counters.loadMsSum), diskEvictions: this.options.directory.diskEvictions(), inMemory, onDisk: this.options.directory.onDiskCount() };
  }

  /** Stops following the directory and unloads every version (those in use once their leases end); idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.options.directory.close();
    const all = [...this.slots.values(), ...this.retiring];
    this.slots.clear();
    await Promise.allSettled(
      all.map(async (s) => {
        if (s.loading) await s.loading.catch(() => undefined);
        s.stale = true;
        this.retiring.add(s);
        this.maybeUnload(s);
      }),
    );
  }
}

/** One use of a loaded version (`ManagedModels.acquire`): a class rather than an object with a closure, as this is made once per prediction. */
class Lease<M> implements ModelLease<M> {
  private released = false;

  constructor(
    readonly name: string,
    readonly version: string,
    readonly model: M,
    private readonly onEnd: () => void,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onEnd();
  }
}
