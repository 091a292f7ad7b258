import { existsSync } from 'node:fs';
import { injectable } from 'inversify';
import type { UserModuleImporter } from '../../core/ports/user-module-importer.js';

/**
 * `UserModuleImporter` on tsx's `tsImport`, which compiles TypeScript and accepts ES module syntax
 * whether or not the file's folder has a `package.json` saying `"type": "module"` — the projects
 * Cortex users bring have none, and a plain `import()` of their `.ts` file fails there. tsx is
 * imported on the first user file, so an API without one (onnx or tensorflow served without code, a
 * Python predictor) never loads it. `import ... from 'myelin'` resolves to the installed package, or
 * in a clone through the `paths` entry of myelin's tsconfig.json. Stateless; safe in any thread.
 */
@injectable()
export class TsxUserModuleImporter implements UserModuleImporter {
  async exists(absPath: string): Promise<boolean> {
    return existsSync(absPath);
  }

  async import(absPath: string): Promise<Record<string, unknown>> {
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(absPath, import.meta.url)) as Record<string, unknown>;
  }
}
