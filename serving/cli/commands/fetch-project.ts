import { readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { EngineError } from '../../../core/errors.js';
import { DEFAULT_PYTHON, PYTHON_ENV, REQUIREMENTS_FILE } from '../../../core/predictor/python-predictor.js';
import { BUNDLE_MEDIA_TYPE, BundleError, bundleId, decodeBundle, unpackProjectInto, type ProjectBundle } from '../../daemon/project-bundle.js';
import { PythonEnvCache } from '../../daemon/python-env-cache.js';
import { ExitError } from '../exit-error.js';

/** The file a mounted ConfigMap folder holds the encoded bundle in (`--from DIR`). */
export const PROJECT_BUNDLE_FILE = 'project.bundle';
/** Where `--url` and `--token` default from: what the daemon gives a pod's init container. */
export const PROJECT_URL_ENV = 'MYELIN_PROJECT_URL';
export const PROJECT_TOKEN_ENV = 'MYELIN_PROJECT_TOKEN';

export interface FetchProjectOptions {
  /** The project's URL on the daemon, `http://<daemon>:8889/v1/projects/<id>?api=<name>`. Default `$MYELIN_PROJECT_URL`. */
  readonly url?: string;
  /** The API's project token (or the daemon's). Default `$MYELIN_PROJECT_TOKEN`. */
  readonly token?: string;
  /** A folder holding `project.bundle` (a mounted ConfigMap): read instead of the daemon. */
  readonly from?: string;
  /** Where the files go: a missing or empty folder (an `emptyDir` mount is written into directly). */
  readonly dest: string;
  readonly stdout: Writable;
  /** Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** How long connection failures are retried (the daemon may be starting). Default 60 s. */
  readonly retryForMs?: number;
  /**
   * Install the project's requirements.txt into a virtualenv under this folder (`<dir>/<key>`, as the
   * daemon's cache builds it, with `$MYELIN_PYTHON` else `python3` and `--system-site-packages`) and
   * link it as `<dir>/current`, whose `bin/python` the replica runs. pip's lines are printed as
   * `[requirements.txt] <line>`; a failed install ends it (`ExitError` 1, with pip's last lines).
   */
  readonly pythonEnv?: string;
}

export interface FetchedProject {
  readonly id: string;
  readonly files: number;
  readonly bytes: number;
}

/** Longest one download may take before it counts as a failed attempt. */
const ATTEMPT_TIMEOUT_MS = 120_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

/**
 * `myelin fetch-project`: a pod's init container gets its API's project from the daemon
 * (`GET /v1/projects/<id>?api=<name>` with the API's project token) or from a mounted ConfigMap
 * (`--from DIR`), decodes it and writes its files under `--dest`. Connection failures and 502/503/504
 * are retried with backoff for `retryForMs`; 401, 404, another answer or a bad bundle end it with one
 * line (`ExitError` 1). Prints `fetched project <id>: N files, B bytes into DIR`.
 */
export async function fetchProject(options: FetchProjectOptions): Promise<FetchedProject> {
  const env = options.env ?? process.env;
  let bytes: Buffer;
  let source: string;
  if (options.from !== undefined) {
    source = join(options.from, PROJECT_BUNDLE_FILE);
    try {
      bytes = await readFile(source);
    } catch (err) {
      throw new ExitError(1, `error: cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    const url = options.url || env[PROJECT_URL_ENV];
    if (!url) throw new ExitError(1, `error: no project URL: pass --url or set ${PROJECT_URL_ENV} (or --from a folder holding ${PROJECT_BUNDLE_FILE})`);
    const token = options.token || env[PROJECT_TOKEN_ENV];
    source = url;
    bytes = await download(url, token, options.retryForMs ?? 60_000);
  }
  let bundle: ProjectBundle;
  try {
    bundle = decodeBundle(bytes);
  } catch (err) {
    throw new ExitError(1, `error: ${source} does not hold a usable project: ${(err as Error).message}`);
  }
  let written: { files: number; bytes: number };
  try {
    written = await unpackProjectInto(options.dest, bundle);
  } catch (err) {
    if (err instanceof BundleError || err instanceof EngineError) throw new ExitError(1, `error: cannot write the project into ${options.dest}: ${err.message}`);
    const e = err as NodeJS.ErrnoException;
    throw new ExitError(1, `error: cannot write the project into ${options.dest}: ${e.code ?? e.message}${e.path ? ` (${e.path})` : ''}`);
  }
  const id = bundleId(bundle);
  options.stdout.write(`fetched project ${id}: ${written.files} files, ${written.bytes} bytes into ${options.dest}\n`);
  if (options.pythonEnv !== undefined) await installRequirements(options.dest, options.pythonEnv, env[PYTHON_ENV] || DEFAULT_PYTHON, options.stdout);
  return { id, ...written };
}

/** `link` → `target`, replaced atomically (a new link beside it, renamed over it). */
async function relink(target: string, link: string): Promise<void> {
  const tmp = `${link}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, link);
}

/** `--python-env DIR`: the project's requirements.txt into `<DIR>/<key>`, linked as `<DIR>/current`. */
async function installRequirements(dest: string, dir: string, python: string, out: Writable): Promise<void> {
  const requirementsFile = join(dest, REQUIREMENTS_FILE);
  if (!(await stat(requirementsFile).then((s) => s.isFile(), () => false))) {
    throw new ExitError(1, `error: --python-env ${dir}: the project has no ${REQUIREMENTS_FILE} to install`);
  }
  const cache = new PythonEnvCache({ dir, python, log: pino({ level: 'silent' }) });
  try {
    const pyEnv = await cache.ensure({ requirementsFile, cwd: dest, onLine: (line) => out.write(`[${REQUIREMENTS_FILE}] ${line}\n`) });
    // Relative, so the link holds wherever the volume is mounted.
    await relink(pyEnv.key, join(dir, 'current'));
    out.write(`python: ${join(dir, 'current', 'bin', 'python')} (${pyEnv.dir})\n`);
  } catch (err) {
    if (err instanceof ExitError) throw err;
    throw new ExitError(1, `error: ${(err as Error).message}`);
  } finally {
    cache.close();
  }
}

/** GETs the encoded bundle, retrying what a starting daemon (or a proxy in front of it) answers. */
async function download(url: string, token: string | undefined, retryForMs: number): Promise<Buffer> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ExitError(1, `error: not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ExitError(1, `error: the project URL must be http:// or https:// (got ${url})`);
  const deadline = Date.now() + retryForMs;
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    let retryReason: string;
    try {
      const res = await fetch(parsed, {
        headers: { accept: BUNDLE_MEDIA_TYPE, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      if (res.ok) return Buffer.from(await res.arrayBuffer());
      const reason = await errorOf(res);
      if (res.status !== 502 && res.status !== 503 && res.status !== 504) {
        const hint = res.status === 401 ? ` (check --token or ${PROJECT_TOKEN_ENV})` : '';
        throw new ExitError(1, `error: ${url} answered HTTP ${res.status}: ${reason}${hint}`);
      }
      retryReason = `HTTP ${res.status}: ${reason}`;
    } catch (err) {
      if (err instanceof ExitError) throw err;
      retryReason = connectionError(err);
    }
    const wait = Math.min(backoff, deadline - Date.now());
    if (wait <= 0) throw new ExitError(1, `error: cannot fetch the project from ${url} (gave up after ${Math.round(retryForMs / 1000)} s): ${retryReason}`);
    await sleep(wait);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

/** The control API's `{ error }`, else the start of the body. */
async function errorOf(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof e === 'string') return e;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200) || res.statusText;
}

/** `fetch failed` names nothing: the code of its cause does (ECONNREFUSED, ENOTFOUND, ...). */
function connectionError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer in ${ATTEMPT_TIMEOUT_MS / 1000} s`;
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
