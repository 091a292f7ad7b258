import { existsSync } from 'node:fs';
import { injectable } from 'inversify';
import { tsImport } from 'tsx/esm/api';
import type { UserModuleImporter } from '../../core/ports/user-module-importer.js';

/**
 * `UserModuleImporter` on tsx's `tsImport`, which compiles TypeScript and accepts ES module syntax
 * whether or not the file's folder has a `package.json` saying `"type": "module"` — the projects
 * Cortex users bring have none, and a plain `import()` of their `.ts` file fails there.
 * `import ... from 'myelin'` resolves through the `paths` entry of myelin's tsconfig.json (tsx reads
 * it via TSX_TSCONFIG_PATH). Stateless; safe in any thread.
 */
@injectable()
export class TsxUserModuleImporter implements UserModuleImporter {
  async exists(absPath: string): Promise<boolean> {
    return existsSync(absPath);
  }

  async import(absPath: string): Promise<Record<string, unknown>> {
    return (await tsImport(absPath, import.meta.url)) as Record<string, unknown>;
  }
}
