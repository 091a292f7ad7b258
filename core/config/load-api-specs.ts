/**
 * The API spec loader: configuration text → resolved `ApiSpec`s, or a `ConfigError` listing every
 * problem of the file at once, each as `<file>:<line>:<col>: <api>: <field>: <message>`.
 *
 * Stages: YAML with positions (yaml-source.ts) → per item, JSON Schema of its dialect
 * (schema-validator.ts) → the legacy dialect normalized into the RealtimeAPI model (api-view.ts) →
 * defaults, quantities, paths and cross-field checks (resolve-api.ts) → file-wide checks (unique
 * names and endpoints). Both entry points are pure: `loadApiSpecs` takes the text and an optional
 * `FileProbe`; `loadApiSpecsFromFile` reads the file through a `ProjectFileSystem` port (on the real
 * disk, `nodeProjectFileSystem` from adapters/fs/) and probes the paths through the same port.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { FileProbe, ProjectFileSystem } from '../ports/project-file-system.js';
import type { ApiSpec } from './api-spec.js';
import { legacyView, realtimeView, type ApiView } from './api-view.js';
import { describeValue } from './quantities.js';
import { resolveApi, type DeployTarget, type ProblemReport } from './resolve-api.js';
import { resolveTrafficSplitter, type TrafficSplitterSpec } from './traffic-splitter.js';
import { validateItem, type ItemSchema } from './schema-validator.js';
import { parseYamlSource, type DataPath, type Position, type YamlSource } from './yaml-source.js';

export interface LoadApiSpecsOptions {
  /** The file as the user named it; shown in every problem, and resolved against `cwd` to find relative paths. */
  readonly file: string;
  /** Folder a relative `file` is relative to (default: the process's working directory). */
  readonly cwd?: string;
  /** Project folder that no path may leave (default: the configuration file's folder). */
  readonly projectDir?: string;
  /** Checks that local paths exist; without it only syntax and containment are checked. */
  readonly probe?: FileProbe;
  /** Where the replicas will run (default `local`); decides which fields are reported as having no effect. */
  readonly target?: DeployTarget;
}

export interface LoadApiSpecsResult {
  /** One resolved, deeply frozen spec per API, in file order. */
  readonly specs: readonly ApiSpec[];
  /** One resolved, deeply frozen spec per `kind: TrafficSplitter`, in file order (traffic-splitter.ts). */
  readonly splitters: readonly TrafficSplitterSpec[];
  /** Problems that do not reject the file (fields accepted without effect, …), severity `warning`. */
  readonly warnings: readonly ConfigProblem[];
}

/** Kinds Cortex had that myelin does not serve. */
const UNSUPPORTED_KINDS = ['BatchAPI', 'TaskAPI', 'AsyncAPI'];

/** Marks problems that come from a bug in the loader rather than from the file (the fuzz test looks for it). */
export const INTERNAL_ERROR_PREFIX = 'internal error while checking the configuration';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Loads every API of a configuration file's text. Returns the specs and the warnings, or throws
 * `ConfigError` carrying every problem (errors and warnings, in file order). Throws nothing else,
 * whatever the input; bounded in time and memory for any input (see yaml-source.ts).
 */
export function loadApiSpecs(text: string, options: LoadApiSpecsOptions): LoadApiSpecsResult {
  const problems: ConfigProblem[] = [];
  try {
    return loadInner(text, options, problems);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError(
      [...problems, { file: options.file, line: 1, col: 1, message: `${INTERNAL_ERROR_PREFIX}: ${message} (please report this)`, severity: 'error' }],
      { cause: err },
    );
  }
}

export interface LoadApiSpecsFromFileOptions extends Omit<LoadApiSpecsOptions, 'file' | 'probe'> {
  /** Where the file is read from, and (unless `probe` is given) where its paths are checked. */
  readonly files: ProjectFileSystem;
  /** Checks the paths instead of `files` (default: `files`). */
  readonly probe?: FileProbe;
}

/**
 * Reads `file` (resolved against `cwd`, default the process's working directory) from
 * `options.files` and loads it with `loadApiSpecs`, probing the paths it names through `files`.
 * A file that cannot be read, or is not UTF-8 text, is a `ConfigError` too.
 */
export async function loadApiSpecsFromFile(file: string, options: LoadApiSpecsFromFileOptions): Promise<LoadApiSpecsResult> {
  const fileProblem = (message: string): ConfigError => new ConfigError([{ file, line: 1, col: 1, message, severity: 'error' }]);
  const { files, ...rest } = options;
  let bytes: Uint8Array;
  try {
    bytes = await files.readFile(isAbsolute(file) ? file : resolve(options.cwd ?? '.', file));
  } catch (err) {
    const code = (err as { code?: string } | null)?.code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw fileProblem(`cannot read the configuration file (${why})`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fileProblem('this is not a text file (it is not valid UTF-8); expected a YAML list of APIs');
  }
  return loadApiSpecs(text, { ...rest, file, probe: options.probe ?? files });
}

function loadInner(rawText: string, options: LoadApiSpecsOptions, problems: ConfigProblem[]): LoadApiSpecsResult {
  const file = options.file;
  const configFile = isAbsolute(file) ? file : resolve(options.cwd ?? '.', file);
  const configDir = dirname(configFile);
  const projectDir = options.projectDir ? resolve(options.cwd ?? '.', options.projectDir) : configDir;
  const target = options.target ?? 'local';
  const text = rawText.charCodeAt(0) === 0xfeff ? rawText.slice(1) : rawText;

  const at = (p: Position, message: string, severity: 'error' | 'warning', api?: string, field?: string): void => {
    problems.push({ file, line: p.line, col: p.col, ...(api !== undefined ? { api } : {}), ...(field !== undefined && field !== '' ? { field } : {}), message, severity });
  };

  const parsed = parseYamlSource(text);
  if (!parsed.ok) {
    for (const p of parsed.problems) at(p.position, p.message, p.severity);
    throw new ConfigError(sorted(problems));
  }
  for (const w of parsed.warnings) at(w.position, w.message, 'warning');
  const { source, data } = parsed;

  if (!Array.isArray(data)) {
    const found = data === null || data === undefined ? 'nothing' : isObj(data) ? 'a map' : `${describeValue(data)}`;
    const hint = isObj(data) ? '; start each API with "- ", e.g. "- name: my-api"' : '';
    at(source.root(), `cortex YAML configuration files must contain a list of maps (found ${found}${hint})`, 'error');
    throw new ConfigError(sorted(problems));
  }
  if (data.length === 0) {
    at(source.root(), 'the list of APIs is empty; expected at least one API, e.g. "- name: my-api"', 'error');
    throw new ConfigError(sorted(problems));
  }

  const specs: ApiSpec[] = [];
  const apiItems: { index: number; spec: ApiSpec; view: ApiView; label: string }[] = [];
  const splitterItems: { index: number; spec: TrafficSplitterSpec; view: ApiView; label: string }[] = [];
  data.forEach((item: unknown, index: number) => {
    if (!isObj(item)) {
      at(source.locate([index]), `cortex YAML configuration files must contain a list of maps (item ${index + 1} is ${describeValue(item)})`, 'error', `api[${index}]`);
      return;
    }
    const label = apiLabel(item, index);
    const problem = (path: DataPath, message: string, severity: 'error' | 'warning', locatePath: DataPath = path): void => {
      at(source.locate([index, ...locatePath]), message, severity, label, fieldText(path));
    };

    const schema = pickSchema(item);
    if (schema === 'unsupported') {
      problem(['kind'], `${describeValue(item.kind)} is not supported by myelin (supported: "RealtimeAPI", "TrafficSplitter", and "api" for the legacy dialect)`, 'error');
      return;
    }
    const issues = validateItem(schema, item);
    for (const i of issues) problem(i.path, i.message, 'error', i.locatePath);
    const poisoned = issues.filter((i) => i.poisons).map((i) => i.path);

    if (schema === 'traffic-splitter') {
      const splitView = realtimeView(item, poisoned);
      const splitReport: ProblemReport = {
        error: (path, message) => problem(path, message, 'error'),
        warning: (path, message) => problem(path, message, 'warning'),
      };
      splitterItems.push({ index, spec: resolveTrafficSplitter(splitView, index, { configFile, projectDir }, splitReport), view: splitView, label });
      return;
    }

    if (schema === 'legacy-deployment') {
      problem(['kind'], 'has no effect: "kind: deployment" only named the deployment in early Cortex; myelin deploys each API by its own name', 'warning');
      return;
    }

    let view: ApiView;
    if (schema === 'legacy-api') {
      const inferred = inferLegacyType(item, configDir, options.probe);
      if (inferred.error) problem(['model_format'], inferred.error, 'error', ['model']);
      view = legacyView(item, poisoned, inferred.type);
    } else {
      view = realtimeView(item, poisoned);
    }
    const report: ProblemReport = {
      error: (path, message) => problem(view.src(path), message, 'error'),
      warning: (path, message) => problem(view.src(path), message, 'warning'),
    };
    const spec = resolveApi(view, index, { configFile, configDir, projectDir, probe: options.probe, target }, report);
    apiItems.push({ index, spec, view, label });
  });

  // Names and endpoints are unique across kinds: a splitter's endpoint is a route like an API's.
  const byPosition = [...apiItems, ...splitterItems].sort((a, b) => a.index - b.index);
  checkUnique(byPosition, source, (p, message, label, field) => at(p, message, 'error', label, field));
  // A name both kinds use is reported as a clash above, not again here.
  const apiNames = new Set(apiItems.map((x) => x.spec.name));
  const splitterNames = new Set(splitterItems.map((x) => x.spec.name).filter((n) => !apiNames.has(n)));
  for (const { index, spec, label } of splitterItems) {
    spec.apis.forEach((b) => {
      if (!splitterNames.has(b.name)) return;
      const i = (data[index] as Obj).apis as unknown[];
      const at_ = i.findIndex((e) => isObj(e) && e.name === b.name);
      at(source.locate([index, 'apis', at_, 'name']), `${JSON.stringify(b.name)} is a TrafficSplitter; the apis of a TrafficSplitter must be RealtimeAPIs`, 'error', label, `apis[${at_}].name`);
    });
  }

  for (const a of apiItems) specs.push(deepFreeze(a.spec));
  const splitters = splitterItems.map((x) => deepFreeze(x.spec));
  if (problems.some((p) => p.severity === 'error')) throw new ConfigError(sorted(problems));
  return { specs: Object.freeze(specs), splitters: Object.freeze(splitters), warnings: Object.freeze(sorted(problems)) };
}

/** Which schema checks an item: by `kind`, or by shape when `kind` is missing or wrong (the schema then reports `kind`). */
function pickSchema(item: Obj): ItemSchema | 'unsupported' {
  const kind = item.kind;
  if (kind === 'RealtimeAPI') return 'realtime';
  if (kind === 'api') return 'legacy-api';
  if (kind === 'deployment') return 'legacy-deployment';
  if (kind === 'TrafficSplitter') return 'traffic-splitter';
  if (typeof kind === 'string' && UNSUPPORTED_KINDS.includes(kind)) return 'unsupported';
  return 'model' in item && !('predictor' in item) ? 'legacy-api' : 'realtime';
}

/** The API's name for messages, when it is a usable one; else `api[<index>]`. */
function apiLabel(item: Obj, index: number): string {
  const name = item.name;
  return typeof name === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(name) ? name : `api[${index}]`;
}

/** `['predictor', 'models', 'paths', 1, 'name']` → `predictor.models.paths[1].name`. */
export function fieldText(path: DataPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** model_format, or the format seed 000 infers: `.onnx` → onnx; `.zip`, a directory, or a URL without an extension → tensorflow. */
function inferLegacyType(item: Obj, configDir: string, probe: FileProbe | undefined): { type?: string; error?: string } {
  if (typeof item.model_format === 'string') return { type: item.model_format };
  if (item.model_format !== undefined) return {};
  const model = item.model;
  if (typeof model !== 'string' || model === '') return {};
  const isUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(model);
  const bare = (isUrl ? model.replace(/[?#].*$/, '') : model).toLowerCase();
  if (bare.endsWith('.onnx')) return { type: 'onnx' };
  if (bare.endsWith('.zip') || bare.endsWith('/')) return { type: 'tensorflow' };
  const last = bare.split('/').pop() ?? '';
  if (!isUrl && probe) {
    const abs = isAbsolute(model) ? model : resolve(configDir, model);
    const kind = probe.kind(abs);
    if (kind === 'directory') return { type: 'tensorflow' };
    if (kind === 'missing') return { type: 'tensorflow' }; // the path check reports the missing model
  } else if (!last.includes('.')) {
    return { type: 'tensorflow' };
  }
  return {
    error: `cannot infer the model format from ${describeValue(model)} (a path ending in .onnx is onnx; one ending in .zip, or a directory, is tensorflow); set model_format to "tensorflow" or "onnx"`,
  };
}

/** API names and endpoints must be unique within the file. */
function checkUnique(
  items: readonly { index: number; spec: { readonly name: string; readonly networking: { readonly endpoint: string } }; view: ApiView; label: string }[],
  source: YamlSource,
  error: (p: Position, message: string, label: string, field: string) => void,
): void {
  const names = new Map<string, number>();
  const endpoints = new Map<string, { index: number; name: string }>();
  for (const { index, spec, view, label } of items) {
    if (view.usable(['name']) && typeof view.get(['name']) === 'string') {
      const prev = names.get(spec.name);
      if (prev !== undefined) {
        error(source.locate([index, 'name']), `API name "${spec.name}" is already used by another API (line ${source.locate([prev, 'name']).line}); API names must be unique`, label, 'name');
        continue;
      }
      names.set(spec.name, index);
    }
    const endpointPath = view.written(['networking', 'endpoint']) ? ['networking', 'endpoint'] : ['name'];
    if (!view.usable(endpointPath)) continue;
    const prev = endpoints.get(spec.networking.endpoint);
    if (prev !== undefined) {
      error(
        source.locate([index, ...endpointPath]),
        `endpoint ${spec.networking.endpoint} is already used by API "${prev.name}" (line ${source.locate([prev.index]).line}); endpoints must be unique`,
        label,
        fieldText(endpointPath[0] === 'name' ? ['networking', 'endpoint'] : endpointPath),
      );
    } else {
      endpoints.set(spec.networking.endpoint, { index, name: spec.name });
    }
  }
}

function sorted(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map(({ p }) => p);
}

function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const child of Object.values(v as object)) stack.push(child);
    }
  }
  return value;
}
