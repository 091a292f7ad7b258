/**
 * How a predictor backend loads a user's code file (a predictor class, a legacy request handler):
 * the port under `importUserModule` (core/predictor/import-user-module.ts), which checks the
 * extension and turns failures into `PredictorError`. The real one is `TsxUserModuleImporter`
 * (adapters/fs/: TypeScript with no build step, through tsx), bound by the composition root
 * (serving/replica/predictor-modules.ts) and injected into the onnx, tensorflow and javascript backends.
 */

export const UserModuleImporter = Symbol('UserModuleImporter');
export interface UserModuleImporter {
  /** Whether a file (or anything) exists at `absPath`. Never rejects. */
  exists(absPath: string): Promise<boolean>;
  /** The module's namespace object (its exports). Rejects with whatever the module system threw (syntax error, top-level throw, …). */
  import(absPath: string): Promise<Record<string, unknown>>;
}
