import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { injectable } from 'inversify';
import type { UserModuleImporter } from '../../core/ports/user-module-importer.js';

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;
let engineApiLinked: Promise<void> | undefined;

/**
 * Makes `require('myelin')` in a user's file (tsx compiles a `.ts` file in a folder without
 * `"type": "module"` to CommonJS, as Cortex projects are) return the running engine's own public API,
 * the module instances the engine itself uses, instead of tsx loading a second copy of the package
 * (≈ 40 MB and a few hundred ms per replica, benchmarks/replica-start.bench.ts). Once per thread.
 */
function linkEngineApi(): Promise<void> {
  engineApiLinked ??= (async () => {
    const api = await import('../../core/index.js');
    const Module = createRequire(import.meta.url)('node:module') as { _load: ModuleLoad };
    const load = Module._load;
    Module._load = function (this: unknown, request, parent, isMain) {
      return request === 'myelin' ? api : load.call(this, request, parent, isMain);
    };
  })();
  return engineApiLinked;
}

/**
 * `UserModuleImporter` on tsx's `tsImport`, which compiles TypeScript and accepts ES module syntax
 * whether or not the file's folder has a `package.json` saying `"type": "module"` — the projects
 * Cortex users bring have none, and a plain `import()` of their `.ts` file fails there. tsx is
 * imported on the first user file, so an API without one (onnx or tensorflow served without code, a
 * Python predictor) never loads it. `import … from 'myelin'` gets the running engine's API (see
 * `linkEngineApi`); in an ES module user file it resolves to the installed package. Stateless; safe
 * in any thread.
 */
@injectable()
export class TsxUserModuleImporter implements UserModuleImporter {
  async exists(absPath: string): Promise<boolean> {
    return existsSync(absPath);
  }

  async import(absPath: string): Promise<Record<string, unknown>> {
    await linkEngineApi();
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(absPath, import.meta.url)) as Record<string, unknown>;
  }
}
