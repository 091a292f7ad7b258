import type { Writable } from 'node:stream';
import { DaemonClient, readLines, type ClientOptions } from '../daemon-client.js';

export interface LogsOptions extends ClientOptions {
  readonly api: string;
  readonly follow: boolean;
  readonly tail?: number;
  readonly stdout: Writable;
  readonly signal?: AbortSignal;
}

/** `myelin logs <api> [--follow] [--tail N]`: the replicas' output, each line prefixed by its replica. */
export async function logs(options: LogsOptions): Promise<void> {
  const client = new DaemonClient(options);
  const q = new URLSearchParams();
  if (options.follow) q.set('follow', '1');
  if (options.tail !== undefined) q.set('tail', String(options.tail));
  const res = await client.request('GET', `/v1/apis/${encodeURIComponent(options.api)}/logs?${q}`, undefined, options.signal);
  try {
    for await (const line of readLines(res)) options.stdout.write(`${line}\n`);
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}
