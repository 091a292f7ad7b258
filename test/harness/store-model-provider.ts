/**
 * The real `ModelProvider` of a replica for tests that construct backends by hand: every store adapter
 * (fs, s3, https/gs) behind the registry, and a machine cache in a temp folder (or `cacheRoot`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FsModelStore } from '../../adapters/storage/fs/fs-model-store.js';
import { HttpsModelStore } from '../../adapters/storage/https/https-model-store.js';
import { S3ModelStore } from '../../adapters/storage/s3/s3-model-store.js';
import { ModelStoreRegistry } from '../../core/contribution/model-store-registry.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelCache } from '../../serving/models/model-cache.js';
import { StoreModelProvider } from '../../serving/models/model-provider.js';

const created: string[] = [];
// Temp caches end with the test process (tests build providers freely, one per backend).
process.once('exit', () => {
  for (const d of created) rmSync(d, { recursive: true, force: true });
});

export function storeModelProvider(options: { readonly cacheRoot?: string; readonly log?: Logger; readonly env?: Readonly<Record<string, string | undefined>> } = {}): StoreModelProvider {
  const log = options.log ?? pino({ level: 'silent' });
  const registry = new ModelStoreRegistry([new FsModelStore(), new S3ModelStore(options.env ? { env: options.env } : {}), new HttpsModelStore()]);
  let root = options.cacheRoot;
  if (root === undefined) {
    root = mkdtempSync(join(tmpdir(), 'myelin-model-cache-'));
    created.push(root);
  }
  return new StoreModelProvider(registry, new ModelCache(registry, { root, log }));
}
