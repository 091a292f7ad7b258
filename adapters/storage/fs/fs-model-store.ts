/**
 * The `file` model store: local paths (`./models/iris/`, `/srv/models/iris.onnx`) and `file://` URLs.
 * Lists recursively, following symbolic links (a link to a folder is walked once per real folder, so a
 * loop ends), and reads with `fs` streams. The model cache never copies a local model: this store is
 * for discovery, and for readers that want the bytes.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelStoreError, type ModelStoreContribution, type StoredObject } from '../../../core/ports/model-store.js';

/** The local path of a `file` model URL: `file:///srv/m/` → `/srv/m/`; a plain path as it is. */
export function localModelPath(url: string): string {
  if (!/^file:\/\//i.test(url)) return url;
  try {
    return fileURLToPath(url);
  } catch {
    // `file://relative/path` is not a valid file URL; users mean the path after the scheme.
    return url.slice('file://'.length);
  }
}

function fsError(url: string, err: unknown): ModelStoreError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EACCES' || code === 'EPERM') return new ModelStoreError(url, `${url}: permission denied reading the model (${code})`, { code: 'ENG_MODEL_DENIED', cause: err });
  if (code === 'ENOENT') return new ModelStoreError(url, `${url}: no such file or folder`, { code: 'ENG_MODEL_NOT_FOUND', cause: err });
  return new ModelStoreError(url, `${url}: cannot read the model: ${(err as Error)?.message ?? String(err)}`, { code: 'ENG_MODEL_STORE', cause: err });
}

const byKey = (a: StoredObject, b: StoredObject): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** `ModelStoreContribution` for local paths and `file://` URLs (kind `fs`, scheme `file`). */
export class FsModelStore implements ModelStoreContribution {
  readonly kind = 'fs';
  readonly schemes = ['file'] as const;

  async list(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    const root = localModelPath(url);
    let st;
    try {
      st = await stat(root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw fsError(url, err);
    }
    if (!st.isDirectory()) return [{ key: '', size: st.size, lastModified: st.mtimeMs }];
    const out: StoredObject[] = [];
    const seen = new Set<string>([`${st.dev}:${st.ino}`]);
    const walk = async (dir: string, prefix: string): Promise<void> => {
      signal?.throwIfAborted();
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        throw fsError(url, err);
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        const key = prefix + e.name;
        let s;
        try {
          s = await stat(path); // follows links
        } catch (err) {
          // A dangling link holds nothing to serve.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && e.isSymbolicLink()) continue;
          throw fsError(url, err);
        }
        if (s.isDirectory()) {
          const id = `${s.dev}:${s.ino}`;
          if (seen.has(id)) continue;
          seen.add(id);
          await walk(path, `${key}/`);
          seen.delete(id);
        } else if (s.isFile()) {
          out.push({ key, size: s.size, lastModified: s.mtimeMs });
        }
      }
    };
    await walk(root, '');
    return out.sort(byKey);
  }

  async read(url: string, object: StoredObject, options: { readonly offset?: number; readonly signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    const path = object.key === '' ? localModelPath(url) : join(localModelPath(url), ...object.key.split('/'));
    try {
      const fh = await open(path, 'r');
      return fh.createReadStream({ start: options.offset ?? 0, autoClose: true, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      throw fsError(object.key === '' ? url : `${url.replace(/\/?$/, '/')}${object.key}`, err);
    }
  }
}
