/**
 * The few file-system reads a model backend needs inside a version's local copy (TF.js weight shards,
 * SavedModel files): a port so the backends (plugins, which cannot import each other or the
 * adapters) share one implementation, `NodeModelFs` in adapters/fs/, bound by the composition root
 * (serving/replica/predictor-modules.ts).
 */

/** A regular file or a folder (symlinks are followed). */
export type FsEntryKind = 'file' | 'dir';

export const ModelFs = Symbol('ModelFs');
export interface ModelFs {
  /** `file`, `dir`, or null when nothing is at `path`. Rejects on other errors (permission denied, …). */
  kind(path: string): Promise<FsEntryKind | null>;
  /** Entries of a folder (names only, no `.`/`..`); dangling symlinks are left out. Rejects when `dir` cannot be read. */
  list(dir: string): Promise<ReadonlyArray<{ readonly name: string; readonly kind: FsEntryKind }>>;
}
