import { realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { injectable } from 'inversify';
import type { FileKind, ProjectFileSystem } from '../../core/ports/project-file-system.js';

/**
 * `ProjectFileSystem` on the local file system: synchronous `stat`/`realpath` for the loader's path
 * checks (a handful of calls per API), `readFile` for the configuration file (its node:fs errors,
 * with their `code`, pass through). Stateless.
 */
@injectable()
export class NodeProjectFileSystem implements ProjectFileSystem {
  kind(absPath: string): FileKind {
    try {
      const st = statSync(absPath);
      if (st.isFile()) return 'file';
      if (st.isDirectory()) return 'directory';
      return 'other';
    } catch {
      return 'missing';
    }
  }

  realpath(absPath: string): string | undefined {
    try {
      return realpathSync(absPath);
    } catch {
      return undefined;
    }
  }

  readFile(absPath: string): Promise<Uint8Array> {
    return readFile(absPath);
  }
}

/** The one instance for callers outside a container (the CLI commands, `myelin up`, tests). */
export const nodeProjectFileSystem: ProjectFileSystem = new NodeProjectFileSystem();
