import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { tsImport } from 'tsx/esm/api';
import { PredictorError } from '../errors.js';

/** Extensions a predictor or request-handler file may have. */
export const USER_MODULE_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/**
 * Loads a user's predictor or request-handler file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`) with no build step.
 * Goes through tsx's `tsImport`, which compiles TypeScript and accepts ES module syntax whether or
 * not the file's folder has a `package.json` saying `"type": "module"` — the projects Cortex users
 * bring have none, and a plain `import()` of their `.ts` file fails there. `import ... from 'myelin'`
 * resolves through the `paths` entry of myelin's tsconfig.json (tsx reads it via TSX_TSCONFIG_PATH).
 * `role` names the file in errors, e.g. `an onnx predictor or request handler`.
 * Throws `PredictorError` (code `ENG_PREDICTOR_LOAD`) naming the file and what went wrong.
 */
export async function importUserModule(path: string, role: string): Promise<Record<string, unknown>> {
  const fail = (why: string, cause?: unknown): PredictorError => new PredictorError(`${path}: ${why}`, { code: 'ENG_PREDICTOR_LOAD', cause });
  if (!USER_MODULE_EXTENSIONS.includes(extname(path))) throw fail(`${role} must be one of ${USER_MODULE_EXTENSIONS.join(', ')}`);
  if (!existsSync(path)) throw fail('file not found');
  try {
    return (await tsImport(path, import.meta.url)) as Record<string, unknown>;
  } catch (err) {
    throw fail(`cannot load it: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}
