import { ContainerModule } from 'inversify';
import { ModelStoreContribution } from '../../../core/ports/model-store.js';
import { HttpsModelStore } from './https-model-store.js';

/**
 * The `https` model store (`https://` and `http://` model files, public `gs://` objects) as a
 * `ModelStoreContribution` (SG 1.1, 3.1). Env: `MYELIN_MODEL_CA_FILE` (a PEM file of extra trusted CAs),
 * `MYELIN_GCS_ENDPOINT` (the GCS base URL, default https://storage.googleapis.com).
 */
export const httpsStorageModule = new ContainerModule(({ bind }) => {
  bind(HttpsModelStore).toDynamicValue(() => new HttpsModelStore()).inSingletonScope();
  bind(ModelStoreContribution).toService(HttpsModelStore);
});
