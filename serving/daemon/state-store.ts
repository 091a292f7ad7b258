import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import type { StoredSplitter } from './traffic-splitters.js';

/** What the daemon remembers about one deployed API; enough to restore it after a restart. */
export interface StoredApi {
  readonly name: string;
  /** Folder (under `<state>/projects/`) the project was unpacked into. */
  readonly projectDir: string;
  /** Config file path inside `projectDir` (relative, `/`-separated). */
  readonly configFile: string;
  /** Hash of the project's files without the config file (Cortex's projectID; part of the revision). */
  readonly projectId: string;
  /** Changes on every `refresh`, forcing a new revision (Cortex's deploymentID). */
  readonly deploymentNonce: string;
  readonly revision: string;
  /** Desired replicas as last decided (the autoscaler resumes from here). */
  readonly replicas: number;
  /** ms since the epoch of the last deploy/refresh that changed the revision. */
  readonly lastUpdated: number;
  /** ms since the epoch of the first deploy. */
  readonly created: number;
}

/** Default state folder: `$MYELIN_STATE_DIR`, else `~/.myelin`. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.MYELIN_STATE_DIR ?? join(homedir(), '.myelin'));
}

/**
 * The daemon's state folder. Layout:
 * `apis/<name>.json` (StoredApi), `splitters/<name>.json` (StoredSplitter), `autoscaler/<name>.json` (policy state), `recordings/<name>.json` (the
 * per-second in-flight recording, in-flight-recording.ts), `projects/<id>/` (uploaded
 * projects), `python-envs/<key>/` (requirements.txt virtualenvs, python-env-cache.ts), `models/` (the
 * machine's model cache, serving/models/model-cache.ts, shared with the local replicas), `run/` (the local
 * replicas' spec files, mode 0600), `secrets/<NAME>` (API key secrets, api-key-secrets.ts), `token` (control API bearer token, mode 0600), `daemon.pid`, `daemon.log`.
 * Every write is atomic (temp file + rename).
 */
export class StateStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }
  get projectsDir(): string {
    return join(this.dir, 'projects');
  }
  /** Virtualenvs of projects' requirements.txt, by content hash (`PythonEnvCache`). */
  get pythonEnvsDir(): string {
    return join(this.dir, 'python-envs');
  }
  /** The model cache the daemon prefetches into and local replicas read (`MYELIN_MODEL_CACHE`). */
  get modelsDir(): string {
    return join(this.dir, 'models');
  }
  /** The local orchestrator's spec files, one folder per API (removed on a clean stop). */
  get runDir(): string {
    return join(this.dir, 'run');
  }
  get pidFile(): string {
    return join(this.dir, 'daemon.pid');
  }
  get logFile(): string {
    return join(this.dir, 'daemon.log');
  }
  get tokenFile(): string {
    return join(this.dir, 'token');
  }
  /** Files of `networking.api_keys` secrets, `secrets/<NAME>` (one key per line; written by the operator, read at deploy). */
  get secretsDir(): string {
    return join(this.dir, 'secrets');
  }
  /** Creates the folder, mode 0700 (it holds the token and API specs with their env values). */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // An existing folder made by an older version (or by hand) is tightened too: it is ours alone.
    await chmod(this.dir, 0o700);
    for (const d of ['apis', 'autoscaler', 'projects', 'recordings']) await mkdir(join(this.dir, d), { recursive: true });
  }

  /** Deployed TrafficSplitters (`splitters/<name>.json`), by name; unreadable files are skipped. */
  async listSplitters(): Promise<StoredSplitter[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'splitters'));
    } catch {
      return [];
    }
    const out: StoredSplitter[] = [];
    for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
      try {
        out.push(JSON.parse(await readFile(join(this.dir, 'splitters', n), 'utf8')) as StoredSplitter);
      } catch {
        // Skipped, left for a person to look at, as for APIs.
      }
    }
    return out;
  }
  async putSplitter(s: StoredSplitter): Promise<void> {
    await mkdir(join(this.dir, 'splitters'), { recursive: true });
    await writeFileAtomic(join(this.dir, 'splitters', `${s.spec.name}.json`), JSON.stringify(s, null, 2));
  }
  async deleteSplitter(name: string): Promise<void> {
    await rm(join(this.dir, 'splitters', `${name}.json`), { force: true });
  }

  async listApis(): Promise<StoredApi[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'apis'));
    } catch {
      return [];
    }
    const out: StoredApi[] = [];
    for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
      try {
        out.push(JSON.parse(await readFile(join(this.dir, 'apis', n), 'utf8')) as StoredApi);
      } catch {
        // A file we cannot read is skipped (and left for a person to look at) rather than stopping the restore.
      }
    }
    return out;
  }
  async putApi(api: StoredApi): Promise<void> {
    await writeFileAtomic(join(this.dir, 'apis', `${api.name}.json`), JSON.stringify(api, null, 2));
  }
  async deleteApi(name: string): Promise<void> {
    await rm(join(this.dir, 'apis', `${name}.json`), { force: true });
    await rm(join(this.dir, 'autoscaler', `${name}.json`), { force: true });
    await rm(join(this.dir, 'recordings', `${name}.json`), { force: true });
  }

  /** The API's persisted in-flight recording (`in-flight-recording.ts`), undefined when there is none. */
  async getRecording(name: string): Promise<unknown | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'recordings', `${name}.json`), 'utf8'));
    } catch {
      return undefined;
    }
  }
  async putRecording(name: string, recording: unknown): Promise<void> {
    await writeFileAtomic(join(this.dir, 'recordings', `${name}.json`), JSON.stringify(recording));
  }

  async getAutoscalerState(name: string): Promise<unknown | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'autoscaler', `${name}.json`), 'utf8'));
    } catch {
      return undefined;
    }
  }
  async putAutoscalerState(name: string, state: unknown): Promise<void> {
    await writeFileAtomic(join(this.dir, 'autoscaler', `${name}.json`), JSON.stringify(state));
  }

  /** The control API token, created (random, mode 0600) on first use. */
  async token(): Promise<string> {
    try {
      const t = (await readFile(this.tokenFile, 'utf8')).trim();
      if (t) return t;
    } catch {
      // created below
    }
    const t = randomBytes(24).toString('base64url');
    await writeFileAtomic(this.tokenFile, `${t}\n`, 0o600);
    return t;
  }
}
