import { ContainerModule } from 'inversify';
import { ModelFs } from '../../core/ports/model-fs.js';
import { ProjectFileSystem } from '../../core/ports/project-file-system.js';
import { UserModuleImporter } from '../../core/ports/user-module-importer.js';
import { NodeModelFs } from './node-model-fs.js';
import { NodeProjectFileSystem } from './node-project-file-system.js';
import { TsxUserModuleImporter } from './tsx-user-module-importer.js';

/**
 * The local file system behind the file ports (SG 1.1): `ProjectFileSystem` (config loading),
 * `ModelFs` (reads inside a model version's local copy) and `UserModuleImporter` (a user's predictor
 * or request-handler file, through tsx). Loaded by every container that holds predictor backends.
 */
export const fsModule = new ContainerModule(({ bind }) => {
  bind(NodeProjectFileSystem).toSelf().inSingletonScope();
  bind(ProjectFileSystem).toService(NodeProjectFileSystem);
  bind(NodeModelFs).toSelf().inSingletonScope();
  bind(ModelFs).toService(NodeModelFs);
  bind(TsxUserModuleImporter).toSelf().inSingletonScope();
  bind(UserModuleImporter).toService(TsxUserModuleImporter);
});
