import { readdir, stat } from 'node:fs/promises';
import { injectable } from 'inversify';
import type { FsEntryKind, ModelFs } from '../../core/ports/model-fs.js';

/** `ModelFs` on node:fs (symlinks followed). Stateless; safe in any thread. */
@injectable()
export class NodeModelFs implements ModelFs {
  async kind(path: string): Promise<FsEntryKind | null> {
    try {
      const s = await stat(path);
      return s.isDirectory() ? 'dir' : 'file';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async list(dir: string): Promise<ReadonlyArray<{ readonly name: string; readonly kind: FsEntryKind }>> {
    const entries = await readdir(dir, { withFileTypes: true });
    const out: { name: string; kind: FsEntryKind }[] = [];
    for (const e of entries) {
      const kind = e.isSymbolicLink() ? await this.kind(`${dir}/${e.name}`) : e.isDirectory() ? 'dir' : 'file';
      if (kind) out.push({ name: e.name, kind });
    }
    return out;
  }
}
