import { ContainerModule } from 'inversify';
import { ModelStoreContribution } from '../../../core/ports/model-store.js';
import { S3ModelStore } from './s3-model-store.js';

/**
 * The `s3` model store (`s3://` on AWS or any S3-compatible endpoint) as a `ModelStoreContribution`
 * (SG 1.1, 3.1). Binding it loads no SDK code: @aws-sdk/client-s3 is imported on the first S3 call.
 */
export const s3StorageModule = new ContainerModule(({ bind }) => {
  bind(S3ModelStore).toDynamicValue(() => new S3ModelStore()).inSingletonScope();
  bind(ModelStoreContribution).toService(S3ModelStore);
});
