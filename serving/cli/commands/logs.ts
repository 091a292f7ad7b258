import type { Writable } from 'node:stream';
import { daemonClient, withHints, type ClientOptions } from '../daemon-client.js';

export interface LogsOptions extends ClientOptions {
  readonly api: string;
  readonly follow: boolean;
  readonly tail?: number;
  readonly stdout: Writable;
  readonly signal?: AbortSignal;
}

/** `myelin logs <api> [--follow] [--tail N]`: the replicas' output, each line prefixed by its replica. */
export async function logs(options: LogsOptions): Promise<void> {
  const client = daemonClient(options);
  await withHints(async () => {
    try {
      for await (const line of client.logs(options.api, { follow: options.follow, tail: options.tail, signal: options.signal })) options.stdout.write(`${line}\n`);
    } catch (err) {
      // Interrupted (Ctrl-C, a test's signal): the lines so far were printed.
      if (!options.signal?.aborted) throw err;
    }
  });
}
