import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatConfigProblem } from '../../../core/errors.js';
import { predictorRunsInPython } from '../../../core/predictor/python-predictor.js';
import { ApiFailedError, DeployTimeoutError, type DeployOutcome, type DeployProgress } from '../../client/myelin-client.js';
import type { DeployResponse } from '../../daemon/daemon-service.js';
import { prefetches, usesRemoteModels } from '../../daemon/model-preparation.js';
import { REQUIREMENTS_FILE } from '../../daemon/python-dependencies.js';
import { daemonClient, withHints, type ClientOptions } from '../daemon-client.js';
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
  const client = daemonClient(options);
  // Only a Python project with requirements.txt has install output to show, and only remote models
  // the daemon downloads at deploy (not with model caching) have download progress.
  const installs = specs.some(predictorRunsInPython) && existsSync(join(dirname(file), REQUIREMENTS_FILE));
  const downloads = specs.some((s) => usesRemoteModels(s) && prefetches(s));
  const names = specs.map((s) => s.name);
  const last = new Map<string, string>();
  const onProgress = (p: DeployProgress): void => {
    if (p.type === 'output') {
      if (names.includes(p.event.api)) options.stdout.write(`[${p.event.stage === 'models' ? 'models' : REQUIREMENTS_FILE}] ${p.event.line}\n`);
    } else if (p.type === 'deployed') {
      // The config file's own warnings were printed above by the local check.
      for (const w of p.response.warnings) if (w.file !== basename(file)) options.stderr.write(`${formatConfigProblem(w)}\n`);
      if (options.output !== 'json') for (const r of [...p.response.results, ...(p.response.splitters ?? [])]) options.stdout.write(`${r.message}\n`);
    } else if (options.output !== 'json') {
      const a = p.api;
      const line = `${a.name}: ${a.status} (${a.upToDate}/${a.requested} up to date${a.stale ? `, ${a.stale} stale` : ''})${a.message ? ` — ${indentLines(a.message)}` : ''}`;
      if (last.get(a.name) !== line) options.stdout.write(`${line}\n`);
      last.set(a.name, line);
    }
  };
  let outcome: DeployOutcome;
  try {
    outcome = await withHints(() =>
      client.deploy(file, {
        force: options.force,
        wait: options.wait,
        timeoutMs: options.timeoutMs,
        onProgress,
        followOutput: (installs || downloads) && options.output !== 'json',
      }),
    );
  } catch (err) {
    if (err instanceof ApiFailedError) {
      const a = err.api;
      const see = `see \`myelin get ${a.name}\` and \`myelin logs ${a.name}\``;
      // A multi-line reason (the end of a Python traceback) is not repeated under the status line
      // that just showed it; for scripts (-o json) it goes last, indented.
      const multiLine = a.message?.includes('\n') === true;
      const why = !multiLine ? `${a.message ? `: ${a.message}` : ''} (${see})` : options.output === 'json' ? ` (${see}): ${indentLines(a.message!)}` : ` (${see}; why is above)`;
      // With -o json the CLI prints one document: this response, the APIs and `errors` (main.ts).
      throw new ExitError(1, `error: ${a.name} is ${a.status}${why}`, { json: { ...err.response, apis: err.apis } });
    }
    if (err instanceof DeployTimeoutError) {
      throw new ExitError(1, `error: gave up waiting after ${err.timeoutMs / 1000}s; the deploy goes on (see \`myelin get\`)`, { json: { ...err.response, apis: err.apis } });
    }
    throw err;
  }
  if (options.output === 'json') {
    options.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
  } else if (outcome.apis) {
    for (const a of outcome.apis) options.stdout.write(`${a.name} is live at ${a.url}\n`);
  }
  const { apis: _apis, ...response } = outcome;
  return response;
}

/** Continuation lines of a multi-line message, indented under the first. */
function indentLines(message: string): string {
  return message.split('\n').join('\n    ');
}
