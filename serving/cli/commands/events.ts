import type { Writable } from 'node:stream';
import { parseDuration } from '../../../core/config/quantities.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { SINGLE_MODEL_NAME } from '../../../core/predictor/model-tree.js';
import { describeDownload } from '../../daemon/model-preparation.js';
import { daemonClient, hinted, withHints, type ClientOptions } from '../daemon-client.js';
import { ExitError } from '../exit-error.js';

export interface EventsOptions extends ClientOptions {
  readonly api?: string;
  readonly follow: boolean;
  /** A duration such as `10m` or `2d` (core `parseDuration`, days allowed, no upper limit): replay events newer than that. */
  readonly since?: string;
  readonly output: 'table' | 'json';
  readonly stdout: Writable;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

/** One event as a readable line: time, api, type and the fields that matter for that type. */
export function formatEvent(e: EngineEvent): string {
  const time = new Date(e.t).toISOString();
  let detail: string;
  switch (e.type) {
    case 'scaling.decided':
      detail = `${e.from} -> ${e.to} replicas (${e.policy}: avg in-flight ${round(e.avgInFlight)}, target ${e.target}, raw ${round(e.raw)}, recommendation ${e.recommendation}; ${e.reason})`;
      break;
    case 'replica.started':
    case 'replica.ready':
    case 'replica.stopped':
    case 'replica.crashed':
      detail = `${e.replica} (revision ${e.revision})${e.exitCode !== undefined && e.exitCode !== null ? ` exit code ${e.exitCode}` : ''}${e.signal ? ` signal ${e.signal}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
      break;
    case 'api.status':
      detail = `${e.status}${e.message ? `: ${e.message}` : ''}`;
      break;
    case 'rollout.progress':
      detail = `revision ${e.revision}: ${e.updated} updated, ${e.stale} stale, ${e.requested} requested`;
      break;
    case 'metrics.unavailable':
      detail = e.reason;
      break;
    case 'scaling.poke':
      detail = `${e.held} request${e.held === 1 ? '' : 's'} held at ${e.replicas} replica${e.replicas === 1 ? '' : 's'}: asking for one now`;
      break;
    case 'deploy.progress':
      detail = `${e.stage}: ${e.line}`;
      break;
    case 'model.download':
      detail = `${describeDownload(e)}${e.replica ? ` (replica ${e.replica})` : ''}`;
      break;
    case 'model.version':
      detail = `${e.model === SINGLE_MODEL_NAME ? 'the model' : `model ${e.model}`}: version ${e.version} ${e.change}${e.replica ? ` (replica ${e.replica})` : ''}`;
      break;
    default: {
      const { v: _v, type: _t, api: _a, t: _time, ...rest } = e as unknown as Record<string, unknown>;
      detail = Object.keys(rest).length ? JSON.stringify(rest) : '';
    }
  }
  return `${time}  ${e.api}  ${e.type}  ${detail}`.trimEnd();
}

function round(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/**
 * `myelin events [api] [--follow] [--since 10m] [-o json]`. Returns the number of events printed.
 * `--follow` ends when the daemon ends the stream (it stops) or on Ctrl-C.
 */
export async function events(options: EventsOptions): Promise<number> {
  const client = daemonClient(options);
  const now = options.now ?? Date.now;
  let sinceMs = 0;
  if (options.since !== undefined) {
    const since = parseDuration(options.since, { allowDays: true, maxMs: Infinity });
    if (!since.ok) throw new ExitError(2, `error: --since: ${since.message}`);
    sinceMs = now() - since.value;
  }
  let n = 0;
  const print = (e: EngineEvent): void => {
    n++;
    options.stdout.write(options.output === 'json' ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
  };
  if (!options.follow) {
    for (const e of await withHints(() => client.eventHistory({ api: options.api, since: sinceMs }))) print(e);
    return n;
  }
  await new Promise<void>((resolve, reject) => {
    const sub = client.events$({ api: options.api, since: sinceMs, reconnect: false }).subscribe({
      next: print,
      error: (err: unknown) => {
        options.signal?.removeEventListener('abort', stop);
        reject(hinted(err));
      },
      complete: () => {
        options.signal?.removeEventListener('abort', stop);
        resolve();
      },
    });
    const stop = (): void => {
      sub.unsubscribe();
      resolve();
    };
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop, { once: true });
  });
  return n;
}
