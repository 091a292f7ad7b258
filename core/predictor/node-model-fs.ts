import { readdir, stat } from 'node:fs/promises';
export type FsEntryKind = 'file' | 'dir';

/** The few file-system reads a backend needs inside a version's local copy (TF.js shards, SavedModel files). */
export interface ModelFs {
  /** `file`, `dir`, or null when nothing is at `path`. */
  kind(path: string): Promise<FsEntryKind | null>;
  /** Entries of a folder (names only, no `.`/`..`). */
  list(dir: string): Promise<ReadonlyArray<{ readonly name: string; readonly kind: FsEntryKind }>>;
}

/** `ModelFs` on node:fs (symlinks followed): the one piece of file access the model backends share (plugins cannot import each other). */
export const nodeModelFs: ModelFs = {
  async kind(path: string): Promise<FsEntryKind | null> {
    try {
      const s = await stat(path);
      return s.isDirectory() ? 'dir' : 'file';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  },
  async list(dir: string) {
    const entries = await readdir(dir, { withFileTypes: true });
    const out: { name: string; kind: FsEntryKind }[] = [];
    for (const e of entries) {
      const kind = e.isSymbolicLink() ? await this.kind(`${dir}/${e.name}`) : e.isDirectory() ? 'dir' : 'file';
      if (kind) out.push({ name: e.name, kind });
    }
    return out;
  },
};
