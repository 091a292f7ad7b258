/**
 * One API item seen in the RealtimeAPI model, whichever dialect it was written in. The legacy dialect
 * (`kind: api`) is normalized here: `model` → `predictor.model_path`, `model_format` (or the format
 * inferred from the model path) → `predictor.type`, `tf_signature_key` → `predictor.signature_key`,
 * `tracker` → `monitoring`, `compute.{min,max,init}_replicas` and `target_cpu_utilization` →
 * `autoscaling` with the `cpu` policy. Every path can be mapped back to where the user wrote it, so
 * problems name the user's own field (`compute.min_replicas`, not `autoscaling.min_replicas`).
 */
import type { ConfigDialect } from './api-spec.js';
import type { DataPath } from './yaml-source.js';

export interface ApiView {
  readonly dialect: ConfigDialect;
  /** The value at a RealtimeAPI-model path; undefined when absent, null-valued, or unusable (it failed the schema). */
  get(path: DataPath): unknown;
  /** Neither this path nor a parent failed the schema (its children may have). */
  intact(path: DataPath): boolean;
  /** The value at the path whatever the schema said of it (for walking a map key by key; check `usable` per key). */
  raw(path: DataPath): unknown;
  /** The field was written in the file (even as null or with a wrong value). */
  written(path: DataPath): boolean;
  /** No schema problem touches this path, its parents or its children. */
  usable(path: DataPath): boolean;
  /** Where the path was written, in the file's own terms (the legacy dialect's field names). */
  src(path: DataPath): DataPath;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function walk(root: unknown, path: DataPath): { found: boolean; value: unknown } {
  let cur: unknown = root;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number') {
      if (seg >= cur.length) return { found: false, value: undefined };
      cur = cur[seg];
    } else if (isObj(cur) && Object.prototype.hasOwnProperty.call(cur, seg)) {
      cur = cur[seg as string];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value: cur };
}

const startsWith = (path: DataPath, prefix: DataPath): boolean => prefix.length <= path.length && prefix.every((s, i) => path[i] === s);

/** A view of an item written in the RealtimeAPI dialect; `poisoned` are the source paths that failed the schema. */
export function realtimeView(item: Obj, poisoned: readonly DataPath[]): ApiView {
  return makeView('realtime', item, item, (p) => p, poisoned);
}

/** Maps RealtimeAPI-model paths to the legacy dialect's fields (first matching prefix wins). */
const LEGACY_PREFIXES: readonly [DataPath, DataPath][] = [
  [['predictor', 'model_path'], ['model']],
  [['predictor', 'signature_key'], ['tf_signature_key']],
  [['predictor', 'request_handler'], ['request_handler']],
  [['monitoring'], ['tracker']],
  [['autoscaling', 'min_replicas'], ['compute', 'min_replicas']],
  [['autoscaling', 'max_replicas'], ['compute', 'max_replicas']],
  [['autoscaling', 'init_replicas'], ['compute', 'init_replicas']],
  [['autoscaling', 'target_cpu_utilization'], ['compute', 'target_cpu_utilization']],
  [['autoscaling'], ['compute']],
];

/**
 * A view of a legacy `kind: api` item in the RealtimeAPI model. `inferredType` is the predictor type
 * the loader chose from `model_format` or the model path (undefined when it could not tell).
 */
export function legacyView(item: Obj, poisoned: readonly DataPath[], inferredType: string | undefined): ApiView {
  const compute = isObj(item.compute) ? item.compute : {};
  const pick = (o: Obj, keys: readonly string[]): Obj => {
    const out: Obj = {};
    for (const k of keys) if (Object.prototype.hasOwnProperty.call(o, k)) out[k] = o[k];
    return out;
  };
  const predictor: Obj = {};
  if (inferredType !== undefined) predictor.type = inferredType;
  if ('model' in item) predictor.model_path = item.model;
  if ('tf_signature_key' in item) predictor.signature_key = item.tf_signature_key;
  if ('request_handler' in item) predictor.request_handler = item.request_handler;
  const norm: Obj = {
    name: item.name,
    kind: 'RealtimeAPI',
    predictor,
    compute: pick(compute, ['cpu', 'gpu', 'mem']),
    autoscaling: { policy: 'cpu', ...pick(compute, ['min_replicas', 'max_replicas', 'init_replicas', 'target_cpu_utilization']) },
  };
  if ('tracker' in item) norm.monitoring = item.tracker;
  const src = (path: DataPath): DataPath => {
    if (startsWith(path, ['predictor', 'type'])) return 'model_format' in item ? ['model_format'] : ['model'];
    for (const [from, to] of LEGACY_PREFIXES) if (startsWith(path, from)) return [...to, ...path.slice(from.length)];
    return path;
  };
  return makeView('legacy', norm, item, src, poisoned);
}

function makeView(dialect: ConfigDialect, norm: Obj, source: Obj, src: (p: DataPath) => DataPath, poisoned: readonly DataPath[]): ApiView {
  const usable = (path: DataPath): boolean => {
    const s = src(path);
    return !poisoned.some((p) => startsWith(s, p) || startsWith(p, s));
  };
  return {
    dialect,
    intact(path) {
      const s = src(path);
      return !poisoned.some((p) => startsWith(s, p));
    },
    get(path) {
      if (!usable(path)) return undefined;
      const r = walk(norm, path);
      return r.found && r.value !== null ? r.value : undefined;
    },
    raw(path) {
      return walk(norm, path).value;
    },
    written(path) {
      return walk(source, src(path)).found;
    },
    usable,
    src,
  };
}
