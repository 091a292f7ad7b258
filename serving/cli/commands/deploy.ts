import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatConfigProblem } from '../../../core/errors.js';
import type { ApiSummary, DeployResponse } from '../../daemon/daemon-service.js';
import { packProject } from '../../daemon/project-bundle.js';
import { DaemonClient, type ClientOptions } from '../daemon-client.js';
import { ExitError } from '../exit-error.js';

export interface DeployOptions extends ClientOptions {
  readonly file?: string;
  readonly cwd: string;
  readonly force: boolean;
  readonly wait: boolean;
  /** Give up waiting after this long (ms); default 10 minutes. */
  readonly timeoutMs?: number;
  readonly output: 'table' | 'json';
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** The file `myelin validate` and `myelin deploy` read when none is named: `myelin.yaml`, else `cortex.yaml`. */
export function defaultConfigFile(cwd: string): string {
  for (const name of ['myelin.yaml', 'cortex.yaml']) if (existsSync(resolve(cwd, name))) return name;
  throw new ExitError(1, `error: no configuration file given, and neither myelin.yaml nor cortex.yaml is in ${cwd}`);
}

/**
 * `myelin deploy [file] [--force] [--no-wait]`: validates the file locally (every problem is listed
 * and nothing is uploaded when it is invalid), uploads the project folder, then shows progress until
 * every API is live (exit 0) or one fails (exit 1).
 */
export async function deploy(options: DeployOptions): Promise<DeployResponse> {
  const file = resolve(options.cwd, options.file ?? defaultConfigFile(options.cwd));
  const shown = options.file ?? basename(file);
  // The same loader the daemon runs: a file that fails here is never uploaded.
  const { specs, warnings } = await loadApiSpecsFromFile(shown, { cwd: options.cwd });
  for (const w of warnings) options.stderr.write(`${formatConfigProblem(w)}\n`);
  const bundle = await packProject(dirname(file), basename(file));
  const client = new DaemonClient(options);
  const response = await client.json<DeployResponse>('POST', '/v1/deploy', { bundle, force: options.force });
  if (options.output === 'json' && !options.wait) {
    options.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
    return response;
  }
  if (options.output !== 'json') for (const r of response.results) options.stdout.write(`${r.message}\n`);
  if (!options.wait) return response;

  const names = specs.map((s) => s.name);
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  const last = new Map<string, string>();
  const tty = (options.stdout as { isTTY?: boolean }).isTTY === true;
  for (;;) {
    const { apis } = await client.json<{ apis: ApiSummary[] }>('GET', '/v1/apis');
    const mine = apis.filter((a) => names.includes(a.name));
    let done = true;
    for (const a of mine) {
      const line = `${a.name}: ${a.status} (${a.upToDate}/${a.requested} up to date${a.stale ? `, ${a.stale} stale` : ''})${a.message ? ` — ${a.message}` : ''}`;
      if (options.output !== 'json' && (tty || last.get(a.name) !== line)) {
        if (last.get(a.name) !== line) options.stdout.write(`${line}\n`);
        last.set(a.name, line);
      }
      // `compute unavailable` can pass (a rollout with max_surge 0 on a full machine frees room as old
      // replicas stop), so only `error` ends the wait early; the status line shows the rest.
      if (a.status === 'error') {
        if (options.output === 'json') options.stdout.write(`${JSON.stringify({ ...response, apis: mine }, null, 2)}\n`);
        throw new ExitError(1, `error: ${a.name} is ${a.status}${a.message ? `: ${a.message}` : ''} (see \`myelin get ${a.name}\` and \`myelin logs ${a.name}\`)`);
      }
      if (a.status !== 'live' || a.stale > 0) done = false;
    }
    if (done && mine.length === names.length) {
      if (options.output === 'json') options.stdout.write(`${JSON.stringify({ ...response, apis: mine }, null, 2)}\n`);
      else for (const a of mine) options.stdout.write(`${a.name} is live at ${a.url}\n`);
      return response;
    }
    if (Date.now() > deadline) throw new ExitError(1, `error: gave up waiting after ${(options.timeoutMs ?? 600_000) / 1000}s; the deploy goes on (see \`myelin get\`)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
