import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { EngineError } from '../../core/errors.js';

/**
 * A project's `requirements.txt` could not be installed: the deploy is refused (HTTP 400 on the
 * control API) and nothing of it is applied. The message names the file and ends with the last
 * lines pip (or `python -m venv`) wrote.
 */
export class RequirementsError extends EngineError {
  constructor(message: string, options?: ErrorOptions) {
    super('ENG_REQUIREMENTS', message, options);
  }
}

/** Written last into a finished environment; a folder without it is never used. */
export const PYTHON_ENV_MARKER = 'myelin-env.json';
/** Lines of pip's output quoted in a `RequirementsError`. */
export const ERROR_TAIL_LINES = 15;
/** Hex digits of the sha256 that name an environment's folder (128 bits). */
const KEY_HEX_DIGITS = 32;

/**
 * The folder name of the environment for `requirements` (the file's bytes) installed with
 * `python` (the interpreter as configured): the first 32 hex digits of
 * sha256(python ‖ NUL ‖ bytes). Other requirements or another interpreter ⇒ another environment.
 */
export function pythonEnvKey(python: string, requirements: Uint8Array): string {
  return createHash('sha256').update(python).update('\0').update(requirements).digest('hex').slice(0, KEY_HEX_DIGITS);
}

export interface PythonEnvCacheOptions {
  /** Where environments live: `<state>/python-envs`. */
  readonly dir: string;
  /** The base interpreter (`myelin up --python`, `MYELIN_PYTHON`, else `python3` on PATH). */
  readonly python: string;
  readonly log: Logger;
  /** Longest a venv + pip install may take before it is killed. Default 30 minutes. */
  readonly installTimeoutMs?: number;
}

/** A ready environment. */
export interface PythonEnv {
  readonly key: string;
  /** `<dir>/<key>`. */
  readonly dir: string;
  /** `<dir>/<key>/bin/python`: what the API's replicas run (`MYELIN_PYTHON`). */
  readonly python: string;
  /** True when it was installed before (by an earlier deploy, replica start or daemon run). */
  readonly reused: boolean;
}

export interface EnsurePythonEnvOptions {
  /** Absolute path of the requirements file. */
  readonly requirementsFile: string;
  /** Working folder of pip (the project folder: relative paths in the file resolve there). */
  readonly cwd: string;
  /** Every output line of venv and pip, as it comes, plus a few lines of our own. */
  readonly onLine?: (line: string) => void;
}

/**
 * Per-project virtualenvs for `requirements.txt`, cached by content: `<dir>/<key>/` (see
 * `pythonEnvKey`) is created once with `<python> -m venv --system-site-packages` and
 * `pip install -r`, then reused across deploys, replicas and daemon restarts. A package already in
 * the system site-packages satisfies its requirement without any download.
 *
 * Atomic: an environment is built in `<key>.tmp-<pid>-<rand>/`, completed by the marker file
 * `myelin-env.json`, then renamed to `<key>/`; a build that fails is removed, and a folder without
 * the marker is never used. Concurrent calls for one key share one install (in this process; across
 * processes, the first rename wins and the other build is dropped). Temporary folders of processes
 * that no longer run are removed on first use.
 *
 * Environments are not collected: one no API uses stays until its folder is deleted by hand (it is
 * re-created when needed).
 */
export class PythonEnvCache {
  readonly python: string;
  private readonly log: Logger;
  private readonly installTimeoutMs: number;
  private readonly inflight = new Map<string, Promise<PythonEnv>>();
  private readonly children = new Set<() => void>();
  private swept?: Promise<void>;
  private closed = false;

  constructor(private readonly options: PythonEnvCacheOptions) {
    this.python = options.python;
    this.log = options.log.child({ component: 'daemon/python-env-cache' });
    this.installTimeoutMs = options.installTimeoutMs ?? 30 * 60_000;
  }

  /** The folder environments live in. */
  get dir(): string {
    return this.options.dir;
  }

  /**
   * The environment for this requirements file, installed now unless it exists. Throws
   * `RequirementsError` (with the last lines of the tool's output) when venv or pip fails, the
   * interpreter cannot be run, the install times out or the cache is closed meanwhile.
   */
  async ensure(o: EnsurePythonEnvOptions): Promise<PythonEnv> {
    const bytes = await readFile(o.requirementsFile);
    const key = pythonEnvKey(this.python, bytes);
    const running = this.inflight.get(key);
    if (running) {
      o.onLine?.('the same requirements are being installed by another deploy; waiting for it');
      return running;
    }
    const p = this.ensureKey(key, o).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Stops running installs (they fail with `RequirementsError`); later calls fail too. */
  close(): void {
    this.closed = true;
    for (const kill of this.children) kill();
  }

  private async ensureKey(key: string, o: EnsurePythonEnvOptions): Promise<PythonEnv> {
    const dir = join(this.options.dir, key);
    const python = join(dir, 'bin', 'python');
    if (await isComplete(dir)) {
      o.onLine?.(`requirements.txt is installed already (${dir})`);
      return { key, dir, python, reused: true };
    }
    if (this.closed) throw new RequirementsError('requirements.txt: the daemon is stopping');
    await mkdir(this.options.dir, { recursive: true });
    this.swept ??= this.sweepTemporaryFolders();
    await this.swept;
    const tmp = join(this.options.dir, `${key}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const started = Date.now();
    this.log.info({ key, python: this.python, cwd: o.cwd }, 'installing requirements.txt');
    try {
      o.onLine?.(`creating a virtualenv with ${this.python} (--system-site-packages)`);
      await this.run(this.python, ['-m', 'venv', '--system-site-packages', tmp], o, 'could not create a virtualenv for requirements.txt', 'venv');
      // Relative to the project folder when inside it, so pip's lines say `-r requirements.txt (line 2)`.
      const rel = relative(o.cwd, o.requirementsFile);
      const file = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : o.requirementsFile;
      o.onLine?.(`pip install -r ${file}`);
      await this.run(
        join(tmp, 'bin', 'python'),
        ['-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '--retries', '0', '--timeout', '15', '-r', file],
        o,
        'requirements.txt could not be installed',
        'pip',
      );
      await relocate(tmp, dir);
      await writeFile(join(tmp, PYTHON_ENV_MARKER), `${JSON.stringify({ v: 1, key, python: this.python, createdAt: new Date().toISOString() })}\n`);
      // A folder under the final name without the marker is not an environment (it was never renamed
      // into place by us): it goes, so the rename below can happen.
      if (!(await isComplete(dir))) await rm(dir, { recursive: true, force: true });
      try {
        await rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isComplete(dir))) {
          // Another process finished the same environment first: use it.
          await rm(tmp, { recursive: true, force: true });
          return { key, dir, python, reused: true };
        }
        throw err;
      }
      this.log.info({ key, dir, ms: Date.now() - started }, 'requirements.txt installed');
      o.onLine?.(`requirements.txt installed in ${dir}`);
      return { key, dir, python, reused: false };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch((e: unknown) => this.log.warn({ err: e, dir: tmp }, 'could not remove a failed environment'));
      this.log.warn({ key, err }, 'requirements.txt not installed');
      if (err instanceof RequirementsError) throw err;
      throw new RequirementsError(`requirements.txt could not be installed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Runs one tool with its output going to `onLine` line by line (stdout and stderr, interleaved as
   * they come). Resolves on exit code 0; otherwise throws `RequirementsError`: `what (<tool> exited
   * with code 1); <tool>'s last lines:` and the last `ERROR_TAIL_LINES` lines. The tool runs in its
   * own process group, killed as a whole on timeout or `close()`.
   */
  private run(command: string, args: readonly string[], o: EnsurePythonEnvOptions, what: string, tool: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const tail: string[] = [];
      const onLine = (line: string): void => {
        const l = line.trimEnd();
        if (l === '') return;
        tail.push(l);
        if (tail.length > ERROR_TAIL_LINES) tail.shift();
        o.onLine?.(l);
      };
      const child = spawn(command, [...args], {
        cwd: o.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: { ...process.env, PIP_NO_INPUT: '1', PIP_PROGRESS_BAR: 'off', PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONUNBUFFERED: '1' },
      });
      let why: string | undefined;
      // `why` reads after the tool's name: `pip timed out after 1800s`.
      const kill = (reason: string): void => {
        why ??= reason;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const onClose = (): void => kill('stopped: the daemon is stopping');
      this.children.add(onClose);
      const timer = setTimeout(() => kill(`timed out after ${Math.round(this.installTimeoutMs / 1000)}s`), this.installTimeoutMs);
      let streams = 2;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const done = (): void => {
        if (streams > 0 || !exit) return;
        clearTimeout(timer);
        this.children.delete(onClose);
        if (exit.code === 0 && why === undefined) return resolve();
        const how = why ?? (exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`);
        const quoted = tail.length > 0 ? `; ${tool}'s last lines:\n${tail.map((l) => `  ${l}`).join('\n')}` : '';
        reject(new RequirementsError(`${what} (${tool} ${how})${quoted}`));
      };
      for (const s of [child.stdout!, child.stderr!]) {
        const rl = createInterface({ input: s, crlfDelay: Infinity });
        rl.on('line', onLine);
        rl.on('close', () => {
          streams--;
          done();
        });
      }
      child.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        this.children.delete(onClose);
        const hint = err.code === 'ENOENT' ? ` (not found: set \`myelin up --python PATH\` or MYELIN_PYTHON)` : '';
        reject(new RequirementsError(`${what}: cannot run ${command}${hint}: ${err.message}`, { cause: err }));
      });
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        done();
      });
      if (this.closed) kill('stopped: the daemon is stopping');
    });
  }

  /** Removes `<key>.tmp-<pid>-…` folders whose process is gone (a daemon that died mid-install). */
  private async sweepTemporaryFolders(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.options.dir);
    } catch {
      return;
    }
    for (const n of names) {
      const m = /^[0-9a-f]+\.tmp-(\d+)-[0-9a-f]+$/.exec(n);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      await rm(join(this.options.dir, n), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function isComplete(dir: string): Promise<boolean> {
  try {
    return (await lstat(join(dir, PYTHON_ENV_MARKER))).isFile();
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A virtualenv names its own folder in the scripts it writes (`#!<tmp>/bin/python3` in pip's
 * console scripts, `activate`, pyvenv.cfg's `command`): those are rewritten for the final folder
 * before the rename, so the environment works where it ends up. `bin/python` itself is a symbolic
 * link and Python finds its environment from pyvenv.cfg next to it, wherever that is.
 */
async function relocate(tmp: string, final: string): Promise<void> {
  const from = Buffer.from(tmp);
  const to = Buffer.from(final);
  const files = [join(tmp, 'pyvenv.cfg')];
  for (const n of await readdir(join(tmp, 'bin')).catch(() => [] as string[])) files.push(join(tmp, 'bin', n));
  for (const f of files) {
    const st = await lstat(f).catch(() => undefined);
    if (!st?.isFile() || st.size > 1024 * 1024) continue;
    const bytes = await readFile(f);
    if (bytes.indexOf(from) < 0) continue;
    await writeFile(f, replaceAll(bytes, from, to));
  }
}

/** `bytes` with every occurrence of `from` replaced by `to` (byte-wise: scripts need not be UTF-8). */
function replaceAll(bytes: Buffer, from: Buffer, to: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = bytes.indexOf(from); i >= 0; i = bytes.indexOf(from, at)) {
    parts.push(bytes.subarray(at, i), to);
    at = i + from.length;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts);
}
