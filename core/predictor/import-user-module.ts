import { extname } from 'node:path';
import { PredictorError } from '../errors.js';
import type { UserModuleImporter } from '../ports/user-module-importer.js';

/** Extensions a predictor or request-handler file may have. */
export const USER_MODULE_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/**
 * Loads a user's predictor or request-handler file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`)
 * through `importer` (in a replica, `TsxUserModuleImporter`: TypeScript with no build step, ES module
 * syntax whether or not the file's folder has a `package.json` saying `"type": "module"`).
 * `role` names the file in errors, e.g. `an onnx predictor or request handler`.
 * Throws `PredictorError` (code `ENG_PREDICTOR_LOAD`) naming the file and what went wrong: a wrong
 * extension (checked before the importer is asked anything), a missing file, or the importer's error.
 */
export async function importUserModule(importer: UserModuleImporter, path: string, role: string): Promise<Record<string, unknown>> {
  const fail = (why: string, cause?: unknown): PredictorError => new PredictorError(`${path}: ${why}`, { code: 'ENG_PREDICTOR_LOAD', cause });
  if (!USER_MODULE_EXTENSIONS.includes(extname(path))) throw fail(`${role} must be one of ${USER_MODULE_EXTENSIONS.join(', ')}`);
  if (!(await importer.exists(path))) throw fail('file not found');
  try {
    return await importer.import(path);
  } catch (err) {
    throw fail(`cannot load it: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}
