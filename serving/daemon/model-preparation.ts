/**
 * The model side of a deploy, done before any API of it changes (as `preparePython` is for
 * requirements.txt): every model an API names is listed in its store and checked against the
 * predictor type's layout (`ModelProvider.discover`), so a missing object, a refused bucket, a wrong
 * tree or an unknown URL scheme refuses the deploy as a `ConfigError` naming the config file, the API
 * and the model field; then every version of every remote model is downloaded into the machine's
 * model cache (`prefetchModels`), where the replicas of this machine find it (one download per
 * machine). An API with model caching (`models.cache_size`) is only discovered: Cortex downloads
 * nothing at start then, versions are fetched on request. Local model paths are never copied.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { fieldText } from '../../core/config/load-api-specs.js';
import { parseYamlSource, type DataPath, type Position } from '../../core/config/yaml-source.js';
import { ConfigError, type ConfigProblem } from '../../core/errors.js';
import type { ModelDownloadProgress, ModelProvider } from '../../core/ports/model-provider.js';
import { asPrefix, isRemoteModelUrl, ModelStoreError } from '../../core/ports/model-store.js';
import { modelSources, SINGLE_MODEL_NAME, type ModelTreeEntry, type ModelVersionRef } from '../../core/predictor/model-tree.js';
import { checkBatchDimension } from '../../core/predictor/tensor-batcher.js';
import { ModelCache } from '../models/model-cache.js';
import { readOnnxInputs } from '../../plugins/predictor-onnx/onnx-inputs.js';

/** The models of each API of a deploy, as their stores list them now. */
export type DiscoveredModels = ReadonlyMap<string, readonly ModelTreeEntry[]>;

export interface DiscoverModelsInput {
  /** Every API of the deploy, in file order. */
  readonly specs: readonly ApiSpec[];
  readonly provider: Pick<ModelProvider, 'discover'>;
  /** The config file as problems name it (the bundle's `configFile`). */
  readonly configFile: string;
  /** The config file's text: problems then point at the model field's line (`FieldLocator.of`); line 1 col 1, the file itself, without it. */
  readonly configText?: string;
}

/**
 * Lists and checks the models of every API (APIs without models are skipped). Returns each API's
 * models (an empty list for an API without any). Throws `ConfigError` with one problem per API whose
 * models cannot be used (the `ModelStoreError`'s message, which names the URL and, for a wrong layout,
 * the expected tree); rethrows anything that is not a `ModelStoreError`.
 */
export async function discoverApiModels(input: DiscoverModelsInput): Promise<DiscoveredModels> {
  const out = new Map<string, readonly ModelTreeEntry[]>();
  const problems: ConfigProblem[] = [];
  let locator: FieldLocator | undefined;
  for (const spec of input.specs) {
    if (modelSources(spec.predictor).kind === 'none') {
      out.set(spec.name, []);
      continue;
    }
    try {
      out.set(spec.name, await input.provider.discover(spec.predictor));
    } catch (err) {
      if (!(err instanceof ModelStoreError)) throw err;
      locator ??= new FieldLocator(input.configText);
      problems.push(modelProblem(input.configFile, spec, err, locator));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

export interface PrefetchModelsInput {
  readonly specs: readonly ApiSpec[];
  /** What `discoverApiModels` found for them. */
  readonly discovered: DiscoveredModels;
  readonly provider: Pick<ModelProvider, 'localVersion'>;
  readonly configFile: string;
  readonly configText?: string;
  /** ms; the injected clock (progress is throttled with it). */
  readonly now: () => number;
  /** Least time between two progress reports of one version, ms; default 1000. The `done` report always goes. */
  readonly progressIntervalMs?: number;
  /** Versions downloaded at once; default 4. */
  readonly concurrency?: number;
  /** A download's progress, reported under the first API of the deploy that uses the version. */
  readonly onProgress?: (api: string, p: ModelDownloadProgress) => void;
  /** A version that was in the machine cache already (nothing downloaded). */
  readonly onCached?: (api: string, url: string, bytes: number) => void;
  readonly signal?: AbortSignal;
}

export interface PrefetchedModels {
  /** Versions downloaded now (or waited for while another process downloaded them). */
  readonly downloaded: number;
  /** Versions found in the cache. */
  readonly cached: number;
}

/**
 * Downloads every version of every remote model of the APIs that do not cache models into the machine
 * cache (`ModelProvider.localVersion`); a version two APIs share is fetched once. Local versions and
 * APIs with `models.cache_size` are skipped. Throws `ConfigError` naming the API and field when a
 * download fails (a corrupt object after the retries, the store gone meanwhile); the other downloads
 * are finished or abandoned first (the cache keeps partial files to resume).
 */
export async function prefetchModels(input: PrefetchModelsInput): Promise<PrefetchedModels> {
  const jobs = new Map<string, { readonly spec: ApiSpec; readonly version: ModelVersionRef }>();
  for (const spec of input.specs) {
    if (!prefetches(spec)) continue;
    for (const model of input.discovered.get(spec.name) ?? []) {
      for (const version of model.versions) {
        if (!isRemoteModelUrl(version.url)) continue;
        // The machine cache's own content address: two APIs sharing a version fetch it once.
        const key = ModelCache.key(version);
        if (!jobs.has(key)) jobs.set(key, { spec, version });
      }
    }
  }
  const queue = [...jobs.values()];
  let downloaded = 0;
  let cached = 0;
  const failures: Array<{ readonly spec: ApiSpec; readonly err: ModelStoreError }> = [];
  let other: unknown;
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job !== undefined && other === undefined; job = queue.shift()) {
      const api = job.spec.name;
      const report = throttledProgress(input.now, input.progressIntervalMs ?? 1000, (p) => input.onProgress?.(api, p));
      try {
        const got = await input.provider.localVersion(job.version, { onProgress: report, ...(input.signal ? { signal: input.signal } : {}) });
        if (got.hit) {
          cached++;
          input.onCached?.(api, job.version.url, got.bytes);
        } else downloaded++;
      } catch (err) {
        if (err instanceof ModelStoreError) failures.push({ spec: job.spec, err });
        else other ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(input.concurrency ?? 4, queue.length)) }, worker));
  if (other !== undefined) throw other;
  if (failures.length > 0) {
    const locator = new FieldLocator(input.configText);
    throw new ConfigError(failures.map((f) => modelProblem(input.configFile, f.spec, f.err, locator)));
  }
  return { downloaded, cached };
}

/** True when the API's replicas expect their models in the machine cache at start (no `models.cache_size`). */
export function prefetches(spec: ApiSpec): boolean {
  return modelSources(spec.predictor).kind !== 'none' && spec.predictor.models?.cacheSize === undefined;
}

/** True when some model of the API is remote (it will be listed in, and maybe downloaded from, a store). */
export function usesRemoteModels(spec: ApiSpec): boolean {
  const sources = modelSources(spec.predictor);
  if (sources.kind === 'none') return false;
  return sources.kind === 'dir' ? isRemoteModelUrl(sources.url) : sources.entries.some((e) => isRemoteModelUrl(e.url));
}

/**
 * Wraps a progress callback so that it passes at most one report per `intervalMs` (the first one
 * goes at once), and always the `done` one. `now` is read on each report.
 * Example: reports at 0, 250, 500, 1000, 1250 ms and done at 1400 ⇒ 0, 1000, 1400 pass.
 */
export function throttledProgress(now: () => number, intervalMs: number, emit: (p: ModelDownloadProgress) => void): (p: ModelDownloadProgress) => void {
  let last = -Infinity;
  let finished = false;
  return (p) => {
    if (finished) return;
    const t = now();
    if (!p.done && t - last < intervalMs) return;
    last = t;
    if (p.done) finished = true;
    emit(p);
  };
}

/** One progress line for people: `s3://b/m/: 1.5 MiB of 4.0 MiB (37%, 820 KiB/s)`, or `…: downloaded 4.0 MiB (820 KiB/s)` when done. */
export function describeDownload(p: Pick<ModelDownloadProgress, 'url' | 'bytes' | 'total' | 'rateBytesPerSec' | 'done'>): string {
  const rate = `${formatByteSize(p.rateBytesPerSec)}/s`;
  if (p.done) return `${p.url}: downloaded ${formatByteSize(p.total)} (${rate})`;
  const percent = p.total > 0 ? `${Math.floor((100 * p.bytes) / p.total)}%, ` : '';
  return `${p.url}: ${formatByteSize(p.bytes)} of ${formatByteSize(p.total)} (${percent}${rate})`;
}

/** Bytes for people, binary units with one decimal above KiB: 512 → `512 B`, 1536 → `1.5 KiB`, 4194304 → `4.0 MiB`. */
export function formatByteSize(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (!(bytes >= 1024)) return `${Math.max(0, Math.round(bytes || 0))} B`;
  let v = bytes;
  let unit = 'B';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v.toFixed(1)} ${unit}`;
}


// ---------------------------------------------------------------- which field a model URL came from

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Where a problem points when there is no text to locate it in: the file itself (the convention for file-level problems). */
const FILE_START: Position = { line: 1, col: 1 };

/**
 * Finds where an API's fields are written in the config file (re-parsed once; positions only). The
 * text is the one the APIs were loaded from, so it parses and holds them; the fallbacks below are for
 * callers that have no text, or another one.
 */
export class FieldLocator {
  private parsed: ReturnType<typeof parseYamlSource> | undefined;

  constructor(private readonly text: string | undefined) {}

  /** The raw item of API `name` and its index, when the text parses and has an API of that name. */
  item(name: string): { readonly index: number; readonly item: Obj } | undefined {
    const parsed = this.source();
    if (!parsed || !Array.isArray(parsed.data)) return undefined;
    const index = parsed.data.findIndex((i: unknown) => isObj(i) && i.name === name);
    return index < 0 ? undefined : { index, item: parsed.data[index] as Obj };
  }

  /**
   * Where API `api` writes `path`: the key of the field; when the field is not written (a default),
   * the deepest part of the path that is, at worst the API's own `- name:` entry. Without an API of
   * that name in the text, the top of the file's list of APIs. Line 1 col 1 (the file itself) only
   * when there is no text, or it does not parse: no finer position exists then.
   */
  of(api: string, path: DataPath): Position {
    const parsed = this.source();
    if (!parsed) return FILE_START;
    const found = this.item(api);
    return found ? parsed.source.locate([found.index, ...path]) : parsed.source.root();
  }

  private source(): Extract<ReturnType<typeof parseYamlSource>, { ok: true }> | undefined {
    if (this.text === undefined) return undefined;
    this.parsed ??= parseYamlSource(this.text);
    return this.parsed.ok ? this.parsed : undefined;
  }
}

/** The field (as the user wrote it) whose URL `url` is, or lies below. */
function modelFieldPath(spec: ApiSpec, url: string, raw: Obj | undefined): DataPath {
  const predictor = isObj(raw?.predictor) ? raw.predictor : undefined;
  if (spec.predictor.modelPath !== undefined) {
    // The legacy dialect's `model:` is the RealtimeAPI model's predictor.model_path.
    return raw !== undefined && predictor?.model_path === undefined && 'model' in raw ? ['model'] : ['predictor', 'model_path'];
  }
  const models = spec.predictor.models;
  const key = predictor && !isObj(predictor.models) && isObj(predictor.multi_model_reloading) ? 'multi_model_reloading' : 'models';
  if (models?.path !== undefined) return ['predictor', key, 'path'];
  if (models?.dir !== undefined) return ['predictor', key, 'dir'];
  const paths = models?.paths ?? [];
  const i = paths.findIndex((p) => url === p.path || url.startsWith(asPrefix(p.path)));
  if (i < 0) return ['predictor', key, 'paths'];
  const written = isObj(predictor?.[key]) ? (predictor![key] as Obj).paths : undefined;
  const entry = Array.isArray(written) && isObj(written[i]) ? (written[i] as Obj) : undefined;
  return ['predictor', key, 'paths', i, entry && entry.model_path === undefined && entry.path !== undefined ? 'path' : 'model_path'];
}

function modelProblem(file: string, spec: ApiSpec, err: ModelStoreError, locator: FieldLocator): ConfigProblem {
  const path = modelFieldPath(spec, err.url, locator.item(spec.name)?.item);
  const at = locator.of(spec.name, path);
  return { file, line: at.line, col: at.col, api: spec.name, field: fieldText(path), message: err.message, severity: 'error' };
}

// ---------------------------------------------------------------- batch dimension at deploy

export interface CheckBatchingInput {
  readonly specs: readonly ApiSpec[];
  readonly discovered: DiscoveredModels;
  /** Local copies: the path itself for local models, the machine cache's (prefetched) copy for remote ones. */
  readonly provider: Pick<ModelProvider, 'localVersion'>;
  readonly configFile: string;
  readonly configText?: string;
}

/**
 * Checks, before any replica starts, that every version of an onnx API with `server_side_batching`
 * has a batch dimension that takes `max_batch_size` requests (`checkBatchDimension`, the rule the
 * replica applies at load), reading the graph inputs of each `.onnx` file without loading it. Versions
 * not on local disk (model caching downloads on request) are checked by the replica when it loads them.
 * Throws `ConfigError` at `predictor.server_side_batching.max_batch_size`, naming the version's URL.
 */
export async function checkOnnxBatching(input: CheckBatchingInput): Promise<void> {
  const problems: ConfigProblem[] = [];
  const locator = new FieldLocator(input.configText);
  for (const spec of input.specs) {
    const batching = spec.predictor.serverSideBatching;
    if (spec.predictor.type !== 'onnx' || !batching || spec.predictor.path?.endsWith('.py')) continue;
    for (const model of input.discovered.get(spec.name) ?? []) {
      for (const version of model.versions) {
        if (isRemoteModelUrl(version.url) && !prefetches(spec)) continue;
        let inputs: Array<{ name: string; dtype: string; shape: ReadonlyArray<number | string> }>;
        try {
          const local = await input.provider.localVersion(version);
          const file = await onnxFileOf(local.path);
          inputs = (await readOnnxInputs(file)).map((i) => ({ name: i.name, dtype: '', shape: i.shape }));
        } catch {
          // Unreadable here: the replica's load reports it with onnxruntime's own words.
          continue;
        }
        const problem = checkBatchDimension(inputs, batching.maxBatchSize);
        if (problem === null) continue;
        const path: DataPath = ['predictor', 'server_side_batching', 'max_batch_size'];
        const at = locator.of(spec.name, path);
        const model_ = model.name === SINGLE_MODEL_NAME ? 'the model' : `model "${model.name}"`;
        problems.push({ file: input.configFile, line: at.line, col: at.col, api: spec.name, field: fieldText(path), message: `${version.url}: ${model_} version ${version.version}: ${problem}`, severity: 'error' });
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * The `.onnx` file of a local model version: `path` itself when it is a file, else the one `*.onnx` in
 * the folder. Throws `ModelStoreError` `ENG_MODEL_LAYOUT` (the url being `path`) when the folder holds
 * none or several, and the `stat`/`readdir` error when `path` cannot be read. `checkOnnxBatching`
 * skips such a version (the replica's load reports it); discovery refuses such trees before this.
 */
export async function onnxFileOf(path: string): Promise<string> {
  if (!(await stat(path)).isDirectory()) return path;
  const files = (await readdir(path)).filter((n) => n.endsWith('.onnx')).sort();
  if (files.length !== 1) {
    const found = files.length === 0 ? 'none' : files.join(', ');
    throw new ModelStoreError(path, `${path}: expected exactly one *.onnx file in the model folder (found: ${found})`, { code: 'ENG_MODEL_LAYOUT' });
  }
  return join(path, files[0]);
}
