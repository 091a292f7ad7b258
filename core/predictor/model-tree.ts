/**
 * Which models and versions an API's model fields point at, from store listings (reference/cortex.md
 * §5). Pure: the caller lists (`ModelStore.list`), this groups and checks. The daemon runs it at deploy
 * (so a wrong layout is a deploy error, not a crash loop) and every replica runs it again at start and
 * on each live-reload poll.
 *
 * Rules: `model_path` / `models.path` is one model named `_cortex_default`; `models.paths` names each
 * model; in `models.dir` each top-level folder is a model named after it, and a model file directly in
 * it (`iris.onnx`) is a model named without its extension. Inside a model, integer-named top-level
 * folders are versions and the highest is "latest"; a model without them is version "1". A URL that
 * names one file is version "1".
 */
import type { PredictorSpec, PredictorType } from '../config/api-spec.js';
import { asPrefix, joinModelUrl, ModelStoreError, type StoredObject } from '../ports/model-store.js';

/** The internal name of the single model of an API (Cortex's). */
export const SINGLE_MODEL_NAME = '_cortex_default';

export interface ModelVersionRef {
  /** Decimal digits without leading zeros, e.g. `"1"` or `"1617181920"`. */
  readonly version: string;
  /** The version's URL: a prefix (its folder, ending in `/`) or the model file itself. */
  readonly url: string;
  /** The version's objects, keys relative to `url` (`''` when `url` is the file). */
  readonly objects: readonly StoredObject[];
  /** Newest `lastModified` of its objects, seconds since the epoch (0 when the store gives none), as Cortex's `timestamps`. */
  readonly timestamp: number;
}

export interface ModelTreeEntry {
  readonly name: string;
  /** The model's URL as configured (or found in `models.dir`). */
  readonly url: string;
  /** Ascending by version number; the last one is "latest". Never empty. */
  readonly versions: readonly ModelVersionRef[];
  readonly signatureKey?: string;
}

/** Where a spec's models are, before listing. */
export type ModelSources =
  | { readonly kind: 'none' }
  | { readonly kind: 'paths'; readonly entries: ReadonlyArray<{ readonly name: string; readonly url: string; readonly signatureKey?: string }> }
  | { readonly kind: 'dir'; readonly url: string; readonly signatureKey?: string };

/** The model sources of a predictor spec (`model_path`, `models.path|paths|dir`, or 0.25's `multi_model_reloading`, already folded into `models`). */
export function modelSources(predictor: PredictorSpec): ModelSources {
  const models = predictor.models;
  const defaultKey = models?.signatureKey ?? predictor.signatureKey;
  const key = (k: string | undefined): { signatureKey?: string } => (k === undefined ? {} : { signatureKey: k });
  const single = predictor.modelPath ?? models?.path;
  if (single !== undefined) return { kind: 'paths', entries: [{ name: SINGLE_MODEL_NAME, url: single, ...key(defaultKey) }] };
  if (models?.paths && models.paths.length > 0) {
    return { kind: 'paths', entries: models.paths.map((r) => ({ name: r.name, url: r.path, ...key(r.signatureKey ?? defaultKey) })) };
  }
  if (models?.dir !== undefined) return { kind: 'dir', url: models.dir, ...key(defaultKey) };
  return { kind: 'none' };
}

/** How a predictor type wants a model version laid out. */
export interface ModelFormat {
  /** `onnx`, `tensorflow`, `python`, `javascript`: named in messages. */
  readonly type: PredictorType;
  /** A file that is a whole model by itself (`*.onnx`): allowed as a model URL and as a model inside `models.dir`. */
  isModelFile(fileName: string): boolean;
  /** Problem with one version's objects (keys relative to the version), or null when usable. */
  checkVersion(objects: readonly StoredObject[]): string | null;
  /** The tree a version should have, for messages (lines, indented with two spaces per level). */
  readonly expectedTree: readonly string[];
}

const baseName = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** The file name a URL names: the last segment of its path, without a query or fragment (a presigned HTTPS URL). */
export function fileNameOfUrl(url: string): string {
  const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url.replace(/[?#].*$/, '') : url;
  return decodeURIComponentSafe(baseName(path.replace(/\/+$/, '')));
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
const topLevel = (objects: readonly StoredObject[]): StoredObject[] => objects.filter((o) => !o.key.includes('/'));

export const ONNX_FORMAT: ModelFormat = {
  type: 'onnx',
  isModelFile: (name) => name.endsWith('.onnx'),
  checkVersion(objects) {
    const onnx = topLevel(objects).filter((o) => o.key === '' || o.key.endsWith('.onnx'));
    if (onnx.length === 1) return null;
    if (onnx.length === 0) return `no *.onnx file${objects.length ? ` (found: ${listKeys(objects)})` : ' (the folder is empty)'}`;
    return `more than one *.onnx file (${onnx.map((o) => o.key).join(', ')}); a version holds exactly one`;
  },
  expectedTree: ['<model>.onnx', 'or, with versions:', '1/', '  <model>.onnx', '2/', '  <model>.onnx'],
};

export const TENSORFLOW_FORMAT: ModelFormat = {
  type: 'tensorflow',
  isModelFile: (name) => name === 'model.json',
  checkVersion(objects) {
    const keys = new Set(objects.map((o) => o.key));
    if (keys.has('saved_model.pb') && objects.some((o) => o.key.startsWith('variables/'))) return null;
    if (keys.has('model.json') || (objects.length === 1 && objects[0].key === '' )) return null;
    if (keys.has('saved_model.pb')) return 'saved_model.pb without a variables/ folder';
    return `neither a SavedModel (saved_model.pb + variables/) nor a TF.js model (model.json)${objects.length ? ` (found: ${listKeys(objects)})` : ' (the folder is empty)'}`;
  },
  expectedTree: ['saved_model.pb', 'variables/', '  variables.index', '  variables.data-00000-of-00001', 'or a TF.js model:', 'model.json', 'group1-shard1of1.bin', 'either of them optionally inside version folders 1/, 2/, …'],
};

/** Python (`load_model(path)` decides) and TypeScript (`loadModel(path)`) take any non-empty version. */
export function anyFormat(type: PredictorType): ModelFormat {
  return {
    type,
    isModelFile: () => true,
    checkVersion: (objects) => (objects.length === 0 ? 'the folder is empty' : null),
    expectedTree: ['<any files your load_model(path) reads>', 'optionally inside version folders 1/, 2/, …'],
  };
}

/** The layout rules of a predictor type. */
export function modelFormatOf(type: PredictorType): ModelFormat {
  return type === 'onnx' ? ONNX_FORMAT : type === 'tensorflow' ? TENSORFLOW_FORMAT : anyFormat(type);
}

function listKeys(objects: readonly StoredObject[], max = 5): string {
  const keys = objects.map((o) => o.key || '(the object itself)');
  return keys.length > max ? `${keys.slice(0, max).join(', ')}, … ${keys.length - max} more` : keys.join(', ');
}

function layoutError(url: string, name: string, problem: string, format: ModelFormat): ModelStoreError {
  const model = name === SINGLE_MODEL_NAME ? 'the model' : `model "${name}"`;
  const tree = format.expectedTree.map((l) => `  ${l}`).join('\n');
  return new ModelStoreError(url, `${url}: ${model} is not a valid ${format.type} model: ${problem}; expected:\n${tree}`, { code: 'ENG_MODEL_LAYOUT' });
}

function compareVersions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function timestampOf(objects: readonly StoredObject[]): number {
  let t = 0;
  for (const o of objects) if (o.lastModified !== undefined && o.lastModified > t) t = o.lastModified;
  return Math.floor(t / 1000);
}

/**
 * One model's versions from the listing of its URL. Throws `ModelStoreError`: `ENG_MODEL_NOT_FOUND`
 * when the listing is empty, `ENG_MODEL_LAYOUT` (with the expected tree) when a version is unusable.
 */
export function modelTreeEntry(name: string, url: string, objects: readonly StoredObject[], format: ModelFormat, signatureKey?: string): ModelTreeEntry {
  const withKey = (e: Omit<ModelTreeEntry, 'signatureKey'>): ModelTreeEntry => (signatureKey === undefined ? e : { ...e, signatureKey });
  if (objects.length === 0) {
    const model = name === SINGLE_MODEL_NAME ? 'the model' : `model "${name}"`;
    throw new ModelStoreError(url, `${url}: ${model} was not found (nothing is stored at that path)`, { code: 'ENG_MODEL_NOT_FOUND' });
  }
  if (objects.length === 1 && objects[0].key === '') {
    // The URL names a file.
    const fileName = fileNameOfUrl(url);
    if (!format.isModelFile(fileName)) throw layoutError(url, name, `${fileName} is a single file, not a ${format.type} model file`, format);
    return withKey({ name, url, versions: [{ version: '1', url, objects, timestamp: timestampOf(objects) }] });
  }
  const byVersion = new Map<string, StoredObject[]>();
  const folderOf = new Map<string, string>();
  for (const o of objects) {
    const slash = o.key.indexOf('/');
    if (slash <= 0) continue;
    const first = o.key.slice(0, slash);
    if (!/^\d+$/.test(first)) continue;
    const v = String(BigInt(first));
    const seen = folderOf.get(v);
    if (seen !== undefined && seen !== first) {
      throw layoutError(url, name, `folders ${seen}/ and ${first}/ are both version ${v}; keep one`, format);
    }
    folderOf.set(v, first);
    const list = byVersion.get(v) ?? [];
    list.push({ ...o, key: o.key.slice(slash + 1) });
    byVersion.set(v, list);
  }
  if (byVersion.size === 0) {
    const problem = format.checkVersion(objects);
    if (problem) throw layoutError(url, name, problem, format);
    return withKey({ name, url: asPrefix(url), versions: [{ version: '1', url: asPrefix(url), objects, timestamp: timestampOf(objects) }] });
  }
  const versions: ModelVersionRef[] = [];
  for (const v of [...byVersion.keys()].sort(compareVersions)) {
    const objs = byVersion.get(v)!;
    // The folder name as stored (leading zeros kept) addresses it.
    const folder = objects.find((o) => o.key.includes('/') && /^\d+$/.test(o.key.slice(0, o.key.indexOf('/'))) && String(BigInt(o.key.slice(0, o.key.indexOf('/')))) === v)!.key.split('/')[0];
    const problem = format.checkVersion(objs);
    if (problem) throw layoutError(joinModelUrl(url, `${folder}/`), name, `version ${v}: ${problem}`, format);
    versions.push({ version: v, url: joinModelUrl(url, `${folder}/`), objects: objs, timestamp: timestampOf(objs) });
  }
  return withKey({ name, url: asPrefix(url), versions });
}

/**
 * The models of a `models.dir` from its listing: each top-level folder, and each model file directly in
 * it. Throws `ModelStoreError` when the listing is empty or holds no model, or a model's layout is wrong.
 */
export function modelsInDir(url: string, objects: readonly StoredObject[], format: ModelFormat, signatureKey?: string): ModelTreeEntry[] {
  if (objects.length === 0) throw new ModelStoreError(url, `${url}: models.dir was not found (nothing is stored at that path)`, { code: 'ENG_MODEL_NOT_FOUND' });
  const folders = new Map<string, StoredObject[]>();
  const out: ModelTreeEntry[] = [];
  for (const o of objects) {
    const slash = o.key.indexOf('/');
    if (slash < 0) continue;
    const first = o.key.slice(0, slash);
    if (first.startsWith('.')) continue;
    const list = folders.get(first) ?? [];
    list.push({ ...o, key: o.key.slice(slash + 1) });
    folders.set(first, list);
  }
  const files = topLevel(objects).filter((o) => o.key !== '' && !o.key.startsWith('.') && format.type !== 'python' && format.type !== 'javascript' && format.isModelFile(o.key));
  const names = new Set<string>(folders.keys());
  const entries: Array<{ sortKey: string; make: () => ModelTreeEntry }> = [];
  for (const [folder, objs] of folders) entries.push({ sortKey: folder, make: () => modelTreeEntry(folder, joinModelUrl(url, `${folder}/`), objs, format, signatureKey) });
  for (const f of files) {
    const name = f.key.replace(/\.[^.]+$/, '');
    // A folder of the same name wins (it may hold versions of that model).
    if (names.has(name)) continue;
    names.add(name);
    entries.push({ sortKey: f.key, make: () => modelTreeEntry(name, joinModelUrl(url, f.key), [{ ...f, key: '' }], format, signatureKey) });
  }
  // By name as listed, folders and files alike.
  for (const e of entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))) out.push(e.make());
  if (out.length === 0) {
    throw new ModelStoreError(url, `${url}: models.dir holds no model (each top-level folder is one model, named after the folder)`, { code: 'ENG_MODEL_LAYOUT' });
  }
  return out;
}

/** Lists a URL (the store registry's `list`). */
export type ListModelUrl = (url: string) => Promise<readonly StoredObject[]>;

/**
 * Every model and version of a predictor spec, listed through `list` and checked against `format`.
 * An empty array when the spec names no model. Throws `ModelStoreError` naming the URL.
 */
export async function discoverModels(predictor: PredictorSpec, list: ListModelUrl, format: ModelFormat = modelFormatOf(predictor.type)): Promise<ModelTreeEntry[]> {
  const sources = modelSources(predictor);
  if (sources.kind === 'none') return [];
  if (sources.kind === 'dir') return modelsInDir(sources.url, await list(sources.url), format, sources.signatureKey);
  const out: ModelTreeEntry[] = [];
  for (const e of sources.entries) out.push(modelTreeEntry(e.name, e.url, await list(e.url), format, e.signatureKey));
  return out;
}

/** The local path of a version inside a folder holding its objects (the file itself for a single-file model). */
export function versionLocalPath(version: ModelVersionRef, dir: string): string {
  if (version.objects.length === 1 && version.objects[0].key === '') {
    const file = fileNameOfUrl(version.url);
    return dir.endsWith('/') ? `${dir}${file}` : `${dir}/${file}`;
  }
  return dir;
}
