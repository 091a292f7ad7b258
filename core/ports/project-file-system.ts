/**
 * The read-only view of a project's files that configuration loading needs: what a path is (the
 * loader's path checks) and the bytes of the configuration file itself. The loader in
 * core/config/load-api-specs.ts is pure and takes one of these as a parameter; the real one is
 * `NodeProjectFileSystem` (adapters/fs/), and any object of the same shape will do (tests, a daemon
 * checking an unpacked project bundle, an in-memory project).
 */

/** What is at a path; `other` is anything that is neither a regular file nor a folder (a socket, a device). */
export type FileKind = 'file' | 'directory' | 'missing' | 'other';

/** How the config loader asks whether a path exists. Synchronous: the loader is a synchronous pure function, and calls it a handful of times per API. */
export interface FileProbe {
  /** What `absPath` is; symlinks are followed. Never throws: unreadable paths are `missing`. */
  kind(absPath: string): FileKind;
  /** The path with symlinks resolved, or undefined when it cannot be resolved. Used to catch symlinks that leave the project. */
  realpath?(absPath: string): string | undefined;
}

export const ProjectFileSystem = Symbol('ProjectFileSystem');
/** A `FileProbe` that can also read a file (the configuration file, for `loadApiSpecsFromFile`). */
export interface ProjectFileSystem extends FileProbe {
  /**
   * The whole content of the file at `absPath`. Rejects with an error whose `code` says why, in
   * POSIX errno terms as node:fs gives them: `ENOENT` (nothing there), `EISDIR` (a folder), `EACCES`
   * (permission denied), or another code; an error without a code is shown as its text.
   */
  readFile(absPath: string): Promise<Uint8Array>;
}
