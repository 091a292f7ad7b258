import type { KubernetesObject, Watch } from '@kubernetes/client-node';
import { backoffDelayMs } from '../../../core/backoff.js';
import type { Logger } from '../../../core/ports/logger.js';

/** How a `KubeListWatch` lists and watches one kind of object. */
export interface KubeListWatchOptions<T extends KubernetesObject> {
  readonly watch: Watch;
  /** Collection path, e.g. `/api/v1/namespaces/default/pods`. */
  readonly path: string;
  readonly labelSelector: string;
  /** Lists the collection with the same selector; its `metadata.resourceVersion` starts the watch. */
  readonly list: () => Promise<{ readonly items: T[]; readonly metadata?: { readonly resourceVersion?: string } }>;
  /** Called after every change of the cached set (synchronously, from the watch's callback). */
  readonly onChange: () => void;
  readonly log: Logger;
  /** First wait before reconnecting after an error, ms; doubles per consecutive failure up to 30 s. */
  readonly retryMs: number;
}

const MAX_RETRY_MS = 30_000;

/**
 * A cache of one kind of object kept current by list-then-watch, the way client-go's reflector
 * does: list, watch from the list's resourceVersion, resume from the last seen resourceVersion when
 * the stream ends (at once after a clean end, with back-off after an error), and list again when
 * the server says the version is too old (410 Expired). Objects are keyed by name (one namespace).
 *
 * Objects from the initial list are deserialized by the client (timestamps are `Date`s); objects
 * from watch events are raw JSON (timestamps are strings): readers must accept both.
 */
export class KubeListWatch<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  private abort?: AbortController;
  private timer?: NodeJS.Timeout;
  /** Bumped on every (re)connection, so callbacks of an abandoned stream are ignored. */
  private generation = 0;
  private failures = 0;
  private closed = false;
  /** Watch connections opened so far (tests read it to see reconnections). */
  connects = 0;
  /** Full lists made so far (the first, then one per 410 Expired or failed resume). */
  lists = 0;

  constructor(private readonly o: KubeListWatchOptions<T>) {}

  /** Lists once (rejects when the API server cannot be reached or refuses), then watches in the background. */
  async start(): Promise<void> {
    await this.relist();
  }

  /** Stops watching; pending reconnections are cancelled. The cache keeps its last content. */
  close(): void {
    this.closed = true;
    this.generation++;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = undefined;
  }

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  values(): T[] {
    return [...this.objects.values()];
  }

  /**
   * Records an object this process just wrote (the API server's answer), so readers see it before the
   * watch delivers it. Ignored when the cache already holds a newer resourceVersion.
   */
  put(obj: T): void {
    const name = obj.metadata?.name;
    if (!name) return;
    const cached = this.objects.get(name);
    const a = Number(cached?.metadata?.resourceVersion);
    const b = Number(obj.metadata?.resourceVersion);
    if (cached && Number.isFinite(a) && Number.isFinite(b) && a > b) return;
    this.objects.set(name, obj);
    this.o.onChange();
  }

  /** Forgets an object this process just deleted. */
  forget(name: string): void {
    if (this.objects.delete(name)) this.o.onChange();
  }

  private async relist(): Promise<void> {
    const list = await this.o.list();
    this.lists++;
    if (this.closed) return;
    this.objects.clear();
    for (const item of list.items) if (item.metadata?.name) this.objects.set(item.metadata.name, item);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.o.onChange();
    void this.watchFrom();
  }

  private schedule(ms: number, what: 'watch' | 'list'): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (what === 'watch') void this.watchFrom();
      else
        this.relist().catch((err: unknown) => {
          this.o.log.warn({ err, path: this.o.path }, 'kubernetes list failed; retrying');
          this.schedule(this.backoff(), 'list');
        });
    }, ms);
  }

  /** Counts one more consecutive failure and returns the wait before the next try (core backoff, capped at 30 s). */
  private backoff(): number {
    this.failures++;
    return backoffDelayMs(this.failures, this.o.retryMs, MAX_RETRY_MS);
  }

  private async watchFrom(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    let expired = false;
    this.connects++;
    const onEvent = (type: string, obj: T & { code?: number; message?: string }): void => {
      if (gen !== this.generation) return;
      if (type === 'ERROR') {
        if (obj?.code === 410) expired = true;
        else this.o.log.warn({ path: this.o.path, code: obj?.code, reason: obj?.message }, 'kubernetes watch error event');
        return;
      }
      this.failures = 0;
      const rv = obj?.metadata?.resourceVersion;
      if (rv) this.resourceVersion = rv;
      const name = obj?.metadata?.name;
      if (type === 'BOOKMARK' || !name) return;
      if (type === 'DELETED') this.objects.delete(name);
      else this.objects.set(name, obj);
      this.o.onChange();
    };
    const onDone = (err: unknown): void => {
      if (gen !== this.generation) return;
      this.abort = undefined;
      const status = (err as { statusCode?: number } | null)?.statusCode;
      if (expired || status === 410) {
        this.o.log.info({ path: this.o.path }, 'kubernetes watch expired; listing again');
        this.schedule(0, 'list');
      } else if (err) {
        const wait = this.backoff();
        this.o.log.warn({ err, path: this.o.path, retryInMs: wait }, 'kubernetes watch failed; reconnecting');
        this.schedule(wait, 'watch');
      } else {
        // The server ended the stream (its watch timeout, a restart): resume from the last version.
        this.o.log.debug({ path: this.o.path }, 'kubernetes watch ended; resuming');
        // A second clean end with no event in between backs off, so a server that keeps closing is not hammered.
        const wait = this.failures === 0 ? 0 : this.backoff();
        if (this.failures === 0) this.failures = 1;
        this.schedule(wait, 'watch');
      }
    };
    const query = { labelSelector: this.o.labelSelector, resourceVersion: this.resourceVersion || undefined, allowWatchBookmarks: true };
    try {
      const ctl = await this.o.watch.watch(this.o.path, query, onEvent, onDone);
      if (gen !== this.generation) ctl.abort();
      else this.abort = ctl;
    } catch (err) {
      onDone(err);
    }
  }
}
