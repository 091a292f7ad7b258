import { ContainerModule } from 'inversify';
import { ModelStoreContribution } from '../../../core/ports/model-store.js';
import { FsModelStore } from './fs-model-store.js';

/** The `fs` model store (local paths and `file://` URLs) as a `ModelStoreContribution` (SG 1.1, 3.1). */
export const fsStorageModule = new ContainerModule(({ bind }) => {
  bind(FsModelStore).toDynamicValue(() => new FsModelStore()).inSingletonScope();
  bind(ModelStoreContribution).toService(FsModelStore);
});
