import type { Writable } from 'node:stream';
import type { DeployResult } from '../../daemon/daemon-service.js';
import { daemonClient, withHints, type ClientOptions } from '../daemon-client.js';

export interface ApiCommandOptions extends ClientOptions {
  readonly api: string;
  readonly output: 'table' | 'json';
  readonly stdout: Writable;
}

/** `myelin delete <api>`: stops every replica and forgets the API. */
export async function deleteApi(options: ApiCommandOptions): Promise<void> {
  const r = await withHints(() => daemonClient(options).delete(options.api));
  options.stdout.write(options.output === 'json' ? `${JSON.stringify(r)}\n` : `deleting ${options.api}\n`);
}

/** `myelin refresh <api> [--force]`: a rolling restart of every replica (a new revision, same spec). */
export async function refresh(options: ApiCommandOptions & { readonly force: boolean }): Promise<DeployResult> {
  const r = await withHints(() => daemonClient(options).refresh(options.api, { force: options.force }));
  options.stdout.write(options.output === 'json' ? `${JSON.stringify(r)}\n` : `${r.message}\n`);
  return r;
}
