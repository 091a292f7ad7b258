/**
 * Where an API's models are and which versions they have (reference/cortex.md §5), shared by the onnx
 * and tensorflow backends. Pure logic: the file system is passed in as a `ModelFs`, so this runs in
 * tests on a table and in a backend on `node:fs`.
 *
 * Rules: `model_path` (or `models.path`) is one model named `_cortex_default`; `models.paths` names each
 * model; `models.dir` makes each sub-folder a model named after it (and each model file directly in it,
 * e.g. `iris.onnx`, a model named `iris`). Inside a model folder, integer-named sub-folders are
 * versions and the highest is "latest"; a folder without them is version "1". A model given as a
 * file (`iris.onnx`, `model.json`) is version "1".
 */
import { PredictorError } from '../errors.js';
import type { PredictorSpec } from '../config/api-spec.js';

/** The internal name of the single model of an API (Cortex's). */
export const DEFAULT_MODEL_NAME = '_cortex_default';

export type FsEntryKind = 'file' | 'dir';

/** The few file-system reads model discovery needs. */
export interface ModelFs {
  /** `file`, `dir`, or null when nothing is at `path`. */
  kind(path: string): Promise<FsEntryKind | null>;
  /** Entries of a folder (names only, no `.`/`..`). */
  list(dir: string): Promise<ReadonlyArray<{ readonly name: string; readonly kind: FsEntryKind }>>;
}

export interface ModelVersionLocation {
  /** Decimal digits, e.g. `"1"` or `"1617181920"`. */
  readonly version: string;
  /** The version's folder, or the model file itself. */
  readonly path: string;
}

export interface ModelLocation {
  readonly name: string;
  /** Ascending by version number; the last one is "latest". */
  readonly versions: readonly ModelVersionLocation[];
  readonly signatureKey?: string;
}

export interface ModelLayoutRules {
  /** The backend's name for messages (`onnx`, `tensorflow`). */
  readonly backend: string;
  /** A file that is a whole model by itself (e.g. `*.onnx`); used for `models.dir` entries and direct paths. */
  isModelFile(fileName: string): boolean;
  /** Model name for such a file inside `models.dir` (default: the name without its extension). */
  modelNameOfFile?(fileName: string): string;
}

const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** `file://` URLs become paths; other URLs are refused (a model store downloads them before a backend runs). */
export function localModelPath(path: string, what: string): string {
  const m = URL_SCHEME.exec(path);
  if (!m) return path;
  if (m[1].toLowerCase() === 'file') return decodeURIComponent(new URL(path).pathname);
  throw new PredictorError(`${what}: ${path} is a remote URL; the backend loads local files only (the model must be downloaded to a local path first)`, {
    code: 'ENG_PREDICTOR_MODEL_REMOTE',
  });
}

function compareVersions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The versions inside one model folder (integer-named sub-folders), or version "1" for the folder itself. */
export async function modelVersions(fs: ModelFs, dir: string): Promise<ModelVersionLocation[]> {
  const entries = await fs.list(dir);
  const versions = entries
    .filter((e) => e.kind === 'dir' && /^\d+$/.test(e.name))
    .map((e) => e.name)
    .sort(compareVersions);
  if (versions.length === 0) return [{ version: '1', path: dir }];
  return versions.map((v) => ({ version: String(BigInt(v)), path: joinPath(dir, v) }));
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

async function locateOne(fs: ModelFs, name: string, rawPath: string, signatureKey: string | undefined, rules: ModelLayoutRules): Promise<ModelLocation> {
  const path = localModelPath(rawPath, `model "${name}"`);
  const kind = await fs.kind(path);
  if (kind === null) throw new PredictorError(`model "${name}": ${path} does not exist`, { code: 'ENG_PREDICTOR_MODEL_MISSING' });
  const versions = kind === 'file' ? [{ version: '1', path }] : await modelVersions(fs, path);
  return signatureKey === undefined ? { name, versions } : { name, versions, signatureKey };
}

/**
 * Finds every model and version of a predictor spec. Throws `PredictorError` when no model is
 * configured, a path does not exist, a path is a remote URL, or `models.dir` holds no model.
 */
export async function locateModels(predictor: PredictorSpec, fs: ModelFs, rules: ModelLayoutRules): Promise<ModelLocation[]> {
  const models = predictor.models;
  const single = predictor.modelPath ?? models?.path;
  const defaultKey = models?.signatureKey ?? predictor.signatureKey;
  if (single !== undefined) return [await locateOne(fs, DEFAULT_MODEL_NAME, single, defaultKey, rules)];
  if (models?.paths && models.paths.length > 0) {
    const out: ModelLocation[] = [];
    for (const ref of models.paths) out.push(await locateOne(fs, ref.name, ref.path, ref.signatureKey ?? defaultKey, rules));
    return out;
  }
  if (models?.dir !== undefined) {
    const dir = localModelPath(models.dir, 'models.dir');
    if ((await fs.kind(dir)) !== 'dir') throw new PredictorError(`models.dir: ${dir} is not a folder`, { code: 'ENG_PREDICTOR_MODEL_MISSING' });
    const out: ModelLocation[] = [];
    const entries = [...(await fs.list(dir))].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      if (e.kind === 'dir') out.push(await locateOne(fs, e.name, joinPath(dir, e.name), defaultKey, rules));
      else if (rules.isModelFile(e.name)) {
        const name = rules.modelNameOfFile ? rules.modelNameOfFile(e.name) : e.name.replace(/\.[^.]+$/, '');
        out.push(await locateOne(fs, name, joinPath(dir, e.name), defaultKey, rules));
      }
    }
    if (out.length === 0) throw new PredictorError(`models.dir: ${dir} holds no model (each sub-folder is one model)`, { code: 'ENG_PREDICTOR_MODEL_MISSING' });
    return out;
  }
  throw new PredictorError(`predictor.type ${rules.backend} needs a model: set model_path or models (path, paths or dir)`, {
    code: 'ENG_PREDICTOR_NO_MODEL',
  });
}
