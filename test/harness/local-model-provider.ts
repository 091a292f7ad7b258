/**
 * A real `ModelProvider` over local folders for tests: every `discover` lists the spec's paths again
 * with node:fs (recursively, sizes and mtimes included) and groups them with `discoverModels`, so a
 * version folder a test adds or deletes shows up at the next `ModelDirectory.poll()`. `localVersion`
 * answers the version's own path (local models are never copied); `dropLocalVersion` is a no-op.
 * Calls are recorded, so tests can tell a cache hit (no `localVersion`) from a load.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PredictorSpec } from '../../core/config/api-spec.js';
import type { LocalModelVersion, ModelProvider } from '../../core/ports/model-provider.js';
import type { StoredObject } from '../../core/ports/model-store.js';
import { discoverModels, versionLocalPath, type ModelFormat, type ModelTreeEntry, type ModelVersionRef } from '../../core/predictor/model-tree.js';

/** Every file at or below `path` (key `''` when `path` is a file itself), sorted by key; `[]` when nothing is there. */
export function listLocalObjects(path: string): StoredObject[] {
  let top;
  try {
    top = statSync(path);
  } catch {
    return [];
  }
  if (top.isFile()) return [{ key: '', size: top.size, lastModified: top.mtimeMs }];
  const out: StoredObject[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      const s = statSync(full);
      if (s.isDirectory()) walk(full, `${prefix}${name}/`);
      else if (s.isFile()) out.push({ key: `${prefix}${name}`, size: s.size, lastModified: s.mtimeMs });
    }
  };
  walk(path, '');
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export class LocalModelProvider implements ModelProvider {
  /** The version URLs `localVersion` was asked for, in order. */
  readonly localCalls: string[] = [];
  discoverCalls = 0;

  async discover(predictor: PredictorSpec, format?: ModelFormat): Promise<ModelTreeEntry[]> {
    this.discoverCalls++;
    return discoverModels(predictor, async (url) => listLocalObjects(url.replace(/\/+$/, '')), format);
  }

  async localVersion(version: ModelVersionRef): Promise<LocalModelVersion> {
    this.localCalls.push(version.url);
    const bytes = version.objects.reduce((n, o) => n + o.size, 0);
    const isFile = version.objects.length === 1 && version.objects[0].key === '';
    const path = isFile ? version.url : versionLocalPath(version, version.url.replace(/\/+$/, ''));
    return { path, hit: true, bytes };
  }

  async dropLocalVersion(): Promise<void> {}
}
