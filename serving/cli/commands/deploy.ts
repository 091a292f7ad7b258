import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatConfigProblem } from '../../../core/errors.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { predictorRunsInPython } from '../../../core/predictor/python-predictor.js';
import type { ApiSummary, DeployResponse } from '../../daemon/daemon-service.js';
import { prefetches, usesRemoteModels } from '../../daemon/model-preparation.js';
import { packProject } from '../../daemon/project-bundle.js';
import { REQUIREMENTS_FILE } from '../../daemon/python-dependencies.js';
import { DaemonClient, readLines, type ClientOptions } from '../daemon-client.js';
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
  /** ms since the epoch (for `deploy.progress` events newer than the request). Default `Date.now`. */
  readonly now?: () => number;
}

/** The file `myelin validate` and `myelin deploy` read when none is named: `myelin.yaml`, else `cortex.yaml`. */
export function defaultConfigFile(cwd: string): string {
  for (const name of ['myelin.yaml', 'cortex.yaml']) if (existsSync(resolve(cwd, name))) return name;
  throw new ExitError(1, `error: no configuration file given, and neither myelin.yaml nor cortex.yaml is in ${cwd}`);
}

/**
 * `myelin deploy [file] [--force] [--no-wait]`: validates the file locally (every problem is listed
 * and nothing is uploaded when it is invalid), uploads the project folder, then shows progress until
 * every API is live (exit 0) or one fails (exit 1). While the daemon installs the project's
 * requirements.txt (before it answers), pip's lines are printed as `[requirements.txt] <line>`; while
 * it downloads remote models into the machine cache, about one line per version a second and one when
 * done, as `[models] <url>: <bytes> of <total> (<percent>, <rate>)` (neither with `-o json`).
 * Warnings the daemon adds (dependency files it does not run) go to stderr. With `-o json` a failure
 * is JSON too: the CLI prints `{ errors: [...] }` (with the response and the APIs once uploaded) and exits 1.
 */
export async function deploy(options: DeployOptions): Promise<DeployResponse> {
  const file = resolve(options.cwd, options.file ?? defaultConfigFile(options.cwd));
  const shown = options.file ?? basename(file);
  // The same loader the daemon runs: a file that fails here is never uploaded.
  const { specs, warnings } = await loadApiSpecsFromFile(shown, { files: nodeProjectFileSystem, cwd: options.cwd });
  for (const w of warnings) options.stderr.write(`${formatConfigProblem(w)}\n`);
  const bundle = await packProject(dirname(file), basename(file));
  const client = new DaemonClient(options);
  const names = specs.map((s) => s.name);
  // Only a Python project with requirements.txt has install output to show, and only remote models
  // the daemon downloads at deploy (not with model caching) have download progress.
  const installs = specs.some(predictorRunsInPython) && existsSync(join(dirname(file), REQUIREMENTS_FILE));
  const downloads = specs.some((s) => usesRemoteModels(s) && prefetches(s));
  const progress = (installs || downloads) && options.output !== 'json' ? followDeployProgress(client, names, (options.now ?? Date.now)(), options.stdout) : undefined;
  let response: DeployResponse;
  try {
    response = await client.json<DeployResponse>('POST', '/v1/deploy', { bundle, force: options.force });
  } finally {
    await progress?.stop();
  }
  // The config file's own warnings were printed above by the local check.
  for (const w of response.warnings) if (w.file !== bundle.configFile) options.stderr.write(`${formatConfigProblem(w)}\n`);
  if (options.output === 'json' && !options.wait) {
    options.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
    return response;
  }
  if (options.output !== 'json') for (const r of response.results) options.stdout.write(`${r.message}\n`);
  if (!options.wait) return response;

  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  const last = new Map<string, string>();
  const tty = (options.stdout as { isTTY?: boolean }).isTTY === true;
  for (;;) {
    const { apis } = await client.json<{ apis: ApiSummary[] }>('GET', '/v1/apis');
    const mine = apis.filter((a) => names.includes(a.name));
    let done = true;
    for (const a of mine) {
      const line = `${a.name}: ${a.status} (${a.upToDate}/${a.requested} up to date${a.stale ? `, ${a.stale} stale` : ''})${a.message ? ` — ${indentLines(a.message)}` : ''}`;
      if (options.output !== 'json' && (tty || last.get(a.name) !== line)) {
        if (last.get(a.name) !== line) options.stdout.write(`${line}\n`);
        last.set(a.name, line);
      }
      // `compute unavailable` can pass (a rollout with max_surge 0 on a full machine frees room as old
      // replicas stop), so only `error` ends the wait early; the status line shows the rest.
      if (a.status === 'error') {
        const see = `see \`myelin get ${a.name}\` and \`myelin logs ${a.name}\``;
        // A multi-line reason (the end of a Python traceback) is not repeated under the status line
        // that just showed it; for scripts (-o json) it goes last, indented.
        const multiLine = a.message?.includes('\n') === true;
        const why = !multiLine ? `${a.message ? `: ${a.message}` : ''} (${see})` : options.output === 'json' ? ` (${see}): ${indentLines(a.message!)}` : ` (${see}; why is above)`;
        // With -o json the CLI prints one document: this response, the APIs and `errors` (main.ts).
        throw new ExitError(1, `error: ${a.name} is ${a.status}${why}`, { json: { ...response, apis: mine } });
      }
      if (a.status !== 'live' || a.stale > 0) done = false;
    }
    if (done && mine.length === names.length) {
      if (options.output === 'json') options.stdout.write(`${JSON.stringify({ ...response, apis: mine }, null, 2)}\n`);
      else for (const a of mine) options.stdout.write(`${a.name} is live at ${a.url}\n`);
      return response;
    }
    if (Date.now() > deadline) throw new ExitError(1, `error: gave up waiting after ${(options.timeoutMs ?? 600_000) / 1000}s; the deploy goes on (see \`myelin get\`)`, { json: { ...response, apis: mine } });
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Continuation lines of a multi-line message, indented under the first. */
function indentLines(message: string): string {
  return message.split('\n').join('\n    ');
}

/**
 * Prints the `deploy.progress` lines of these APIs (the daemon installing requirements.txt, or
 * downloading models) while the
 * deploy request is pending: follows the event stream from `sinceMs`. `stop()` ends the stream, then
 * prints what it had not delivered yet from the daemon's retained events, so each line is printed
 * once whatever the timing of the two connections. A daemon without the stream prints nothing.
 */
function followDeployProgress(client: DaemonClient, names: readonly string[], sinceMs: number, out: Writable): { stop(): Promise<void> } {
  const mine = (e: EngineEvent): e is Extract<EngineEvent, { type: 'deploy.progress' }> => e.type === 'deploy.progress' && names.includes(e.api);
  const keyOf = (e: Extract<EngineEvent, { type: 'deploy.progress' }>): string => `${e.api}\0${e.t}\0${e.line}`;
  const printed = new Map<string, number>();
  const print = (e: Extract<EngineEvent, { type: 'deploy.progress' }>): void => {
    out.write(`[${e.stage === 'models' ? 'models' : REQUIREMENTS_FILE}] ${e.line}\n`);
  };
  const abort = new AbortController();
  const following = (async () => {
    try {
      const res = await client.request('GET', `/v1/events?since=${sinceMs}`, undefined, abort.signal);
      for await (const line of readLines(res)) {
        if (!line.startsWith('data: ')) continue;
        const e = JSON.parse(line.slice(6)) as EngineEvent;
        if (!mine(e)) continue;
        print(e);
        printed.set(keyOf(e), (printed.get(keyOf(e)) ?? 0) + 1);
      }
    } catch {
      // Aborted by stop(), or no stream: the catch-up below prints what is missing.
    }
  })();
  return {
    async stop() {
      abort.abort();
      await following;
      let retained: EngineEvent[];
      try {
        retained = (await client.json<{ events: EngineEvent[] }>('GET', `/v1/events?since=${sinceMs}&follow=false`)).events;
      } catch {
        return;
      }
      const again = new Map<string, number>();
      for (const e of retained) {
        if (!mine(e)) continue;
        const k = keyOf(e);
        const n = (again.get(k) ?? 0) + 1;
        again.set(k, n);
        if (n > (printed.get(k) ?? 0)) print(e);
      }
    },
  };
}
