import { tsImport } from 'tsx/esm/api';

/**
 * Loads a user's predictor or request-handler file (`.ts`, `.mts`, `.js`, `.mjs`) with no build step.
 * Goes through tsx's `tsImport`, which compiles TypeScript and accepts ES module syntax whether or
 * not the file's folder has a `package.json` saying `"type": "module"` — the projects Cortex users
 * bring have none, and a plain `import()` of their `.ts` file fails there. `import ... from 'myelin'`
 * resolves through the `paths` entry of myelin's tsconfig.json (tsx reads it via TSX_TSCONFIG_PATH).
 */
export async function importUserModule(path: string): Promise<Record<string, unknown>> {
  return (await tsImport(path, import.meta.url)) as Record<string, unknown>;
}
