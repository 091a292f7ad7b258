import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ContainerModule } from 'inversify';
import { fsModule } from '../../adapters/fs/fs-module.js';
import { ModelRuntimeRegistry } from '../../core/contribution/model-runtime-registry.js';
import { PredictorRegistry } from '../../core/contribution/predictor-registry.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { createContainer } from '../composition/composition-root.js';
import { replicaModelModules } from './replica-model-provider.js';

const PLUGINS_DIR = new URL('../../plugins/', import.meta.url);
/** `.ts` from the sources, `.js` in the compiled package: the plugin modules are this module's siblings. */
const MODULE_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * Module specifiers (file URLs) of the predictor plugins shipped in this repository: every
 * `plugins/predictor-<kind>/predictor-<kind>-module.ts` (`.js` when compiled; SG 1.1), found at run time so a new
 * predictor plugin needs no edit here. Each exports a `ContainerModule` binding a
 * `PredictorBackendContribution`; plugins must import heavy libraries (onnxruntime, tfjs) lazily in
 * `load`, since every replica and worker loads every predictor module.
 */
export function builtinPredictorModules(): string[] {
  const dir = fileURLToPath(PLUGINS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.startsWith('predictor-'))
    .map((d) => new URL(`${d.name}/${d.name}-module${MODULE_EXT}`, PLUGINS_DIR))
    .filter((u) => existsSync(fileURLToPath(u)))
    .map((u) => u.href)
    .sort();
}

/** A specifier as `import()` takes it: absolute paths become file URLs; package names and URLs stay. */
export function normalizeModuleSpecifier(specifier: string): string {
  return isAbsolute(specifier) ? pathToFileURL(specifier).href : specifier;
}

/**
 * Imports each specifier (file URL, absolute path or package name, e.g. an npm package that adds a
 * predictor type) and collects every exported `ContainerModule`. Throws `PredictorError` when a module
 * cannot be imported or exports none.
 */
export async function loadContainerModules(specifiers: readonly string[]): Promise<ContainerModule[]> {
  const out: ContainerModule[] = [];
  for (const s of specifiers) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(normalizeModuleSpecifier(s))) as Record<string, unknown>;
    } catch (err) {
      throw new PredictorError(`cannot load predictor plugin module ${s}: ${(err as Error).message}`, { code: 'ENG_PREDICTOR_PLUGIN', cause: err });
    }
    const found = Object.values(mod).filter((v): v is ContainerModule => v instanceof ContainerModule);
    if (found.length === 0) throw new PredictorError(`predictor plugin module ${s} exports no ContainerModule`, { code: 'ENG_PREDICTOR_PLUGIN' });
    out.push(...found);
  }
  return out;
}

/**
 * The predictor registry of one thread: a container (composition root) with the given plugin modules
 * and `PredictorRegistry`. The replica's main thread and every predictor worker call this with the same
 * specifiers, so a backend contributed by any plugin can be constructed in either place.
 */
export async function createPredictorRegistry(specifiers: readonly string[], log: Logger): Promise<PredictorRegistry> {
  const modules = await loadContainerModules(specifiers);
  const registryModule = new ContainerModule(({ bind }) => {
    bind(PredictorRegistry).toSelf().inSingletonScope();
    // Model runtimes (onnx, tensorflow) for backends that run models for code elsewhere (the Python bridge).
    bind(ModelRuntimeRegistry).toSelf().inSingletonScope();
  });
  // Model stores and the machine cache, for the backends that load models (onnx, tensorflow, python, javascript);
  // the file ports (user predictor files, reads inside a model's local copy) for every backend.
  return createContainer({ logger: log, modules: [...modules, ...replicaModelModules(log), fsModule, registryModule] }).get(PredictorRegistry);
}
