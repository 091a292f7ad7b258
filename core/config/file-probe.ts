/**
 * How the config loader asks whether a path exists. The loader is pure; the caller hands it a probe:
 * `nodeFileProbe` for the real file system (`loadApiSpecsFromFile` does), or any object with the same
 * shape (tests, a daemon checking an unpacked project bundle).
 */
import { realpathSync, statSync } from 'node:fs';

export type FileKind = 'file' | 'directory' | 'missing' | 'other';

export interface FileProbe {
  /** What `absPath` is; symlinks are followed. Never throws: unreadable paths are `missing`. */
  kind(absPath: string): FileKind;
  /** The path with symlinks resolved, or undefined when it cannot be resolved. Used to catch symlinks that leave the project. */
  realpath?(absPath: string): string | undefined;
}

/** A `FileProbe` on the local file system (synchronous `stat`, a handful of calls per API). */
export const nodeFileProbe: FileProbe = {
  kind(absPath: string): FileKind {
    try {
      const st = statSync(absPath);
      if (st.isFile()) return 'file';
      if (st.isDirectory()) return 'directory';
      return 'other';
    } catch {
      return 'missing';
    }
  },
  realpath(absPath: string): string | undefined {
    try {
      return realpathSync(absPath);
    } catch {
      return undefined;
    }
  },
};
