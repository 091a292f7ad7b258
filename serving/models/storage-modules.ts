/**
 * The model storage wiring of a process that reads models (the daemon at deploy, every replica):
 * the three store adapters and `modelProviderModule`, which binds the registry, the machine cache and
 * `ModelProvider` on them, all in singleton scope. The S3 adapter loads @aws-sdk/client-s3 only on the
 * first `s3://` call.
 */
import { ContainerModule } from 'inversify';
import { fsStorageModule } from '../../adapters/storage/fs/fs-storage-module.js';
import { httpsStorageModule } from '../../adapters/storage/https/https-storage-module.js';
import { s3StorageModule } from '../../adapters/storage/s3/s3-storage-module.js';
import { ModelStoreRegistry } from '../../core/contribution/model-store-registry.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import { defaultModelCacheRoot, ModelCache } from './model-cache.js';
import { StoreModelProvider } from './model-provider.js';

/** Every model store adapter: local paths and file://, s3://, https:// / http:// / gs://. */
export const storageModules: readonly ContainerModule[] = [fsStorageModule, s3StorageModule, httpsStorageModule];

export interface ModelProviderModuleOptions {
  /** The machine cache's root; default `defaultModelCacheRoot(process.env)`. */
  readonly cacheRoot?: string;
  readonly log: Logger;
}

/** Binds `ModelStoreRegistry`, `ModelCache` and `ModelProvider` (a `StoreModelProvider`). Load with `storageModules`. */
export function modelProviderModule(options: ModelProviderModuleOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(ModelStoreRegistry).toSelf().inSingletonScope();
    bind(ModelCache)
      .toDynamicValue((ctx) => new ModelCache(ctx.get(ModelStoreRegistry), { root: options.cacheRoot ?? defaultModelCacheRoot(process.env), log: options.log }))
      .inSingletonScope();
    bind(StoreModelProvider)
      .toDynamicValue((ctx) => new StoreModelProvider(ctx.get(ModelStoreRegistry), ctx.get(ModelCache)))
      .inSingletonScope();
    bind(ModelProvider).toService(StoreModelProvider);
  });
}
