import { chmod, mkdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiSpec } from '../../../core/config/api-spec.js';

/**
 * The spec files handed to local replicas: `<runDir>/<api>/<revision>.json`. They hold the APIs'
 * `predictor.env` values (secrets), so the run folder and each API folder are 0700 and each file is
 * 0600, whatever the umask. Writes are atomic (temp file + rename).
 */
export class SpecFileStore {
  constructor(readonly runDir: string) {}

  /** Creates the run folder (0700, also when it existed with other bits). */
  async prepare(): Promise<void> {
    await mkdir(this.runDir, { recursive: true, mode: 0o700 });
    await chmod(this.runDir, 0o700);
  }

  /** Writes one revision's spec and returns the file's path. */
  async write(api: string, revision: string, spec: ApiSpec): Promise<string> {
    const dir = join(this.runDir, safeName(api));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${safeName(revision)}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(spec), { mode: 0o600 });
    await rename(tmp, file);
    return file;
  }

  /** Removes one spec file; a missing file is fine. */
  removeFile(file: string): Promise<void> {
    return rm(file, { force: true });
  }

  /** Removes an API's folder and everything in it. */
  removeApi(api: string): Promise<void> {
    return rm(join(this.runDir, safeName(api)), { recursive: true, force: true });
  }

  /** Removes the run folder when it is empty; never rejects. */
  async close(): Promise<void> {
    await rmdir(this.runDir).catch(() => undefined);
  }
}

/** A name safe as one path segment (API names are DNS labels already; revisions are hex). */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_');
}
