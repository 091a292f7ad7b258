import type { Writable } from 'node:stream';
import type { DeployResult } from '../../daemon/daemon-service.js';
import { DaemonClient, type ClientOptions } from '../daemon-client.js';

export interface ApiCommandOptions extends ClientOptions {
  readonly api: string;
  readonly output: 'table' | 'json';
  readonly stdout: Writable;
}

/** `myelin delete <api>`: stops every replica and forgets the API. */
export async function deleteApi(options: ApiCommandOptions): Promise<void> {
  const client = new DaemonClient(options);
  const r = await client.json<{ deleted: string }>('DELETE', `/v1/apis/${encodeURIComponent(options.api)}`);
  options.stdout.write(options.output === 'json' ? `${JSON.stringify(r)}\n` : `deleting ${options.api}\n`);
}

/** `myelin refresh <api> [--force]`: a rolling restart of every replica (a new revision, same spec). */
export async function refresh(options: ApiCommandOptions & { readonly force: boolean }): Promise<DeployResult> {
  const client = new DaemonClient(options);
  const r = await client.json<DeployResult>('POST', `/v1/apis/${encodeURIComponent(options.api)}/refresh${options.force ? '?force=true' : ''}`);
  options.stdout.write(options.output === 'json' ? `${JSON.stringify(r)}\n` : `${r.message}\n`);
  return r;
}
