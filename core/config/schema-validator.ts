/**
 * JSON Schema validation of one API item against the schema of its dialect (config-schemas/), with
 * ajv's errors turned into messages in Cortex's wording: what was found and what is allowed.
 * The schemas are compiled once, on first use.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import legacySchema from '../../config-schemas/api-legacy.schema.json' with { type: 'json' };
import realtimeSchema from '../../config-schemas/api-realtime.schema.json' with { type: 'json' };
import { EngineError } from '../errors.js';
import { describeValue, parseCpu, parseDuration, parseIntOrPercent, parseMemory, type ParseResult } from './quantities.js';
import type { DataPath } from './yaml-source.js';

/** Which schema an item is checked against. */
export type ItemSchema = 'realtime' | 'legacy-api' | 'legacy-deployment' | 'traffic-splitter';

/** One schema violation, relative to the item. */
export interface SchemaIssue {
  /** Path of the field the message is about. */
  readonly path: DataPath;
  /** Where to point: the field itself, or its parent when the field is missing. */
  readonly locatePath: DataPath;
  readonly message: string;
  /** The value at `path` is unusable (wrong type, out of range); later stages must not read it. */
  readonly poisons: boolean;
}

/** `$id` of config-schemas/api-realtime.schema.json (the RealtimeAPI dialect). */
export const REALTIME_SCHEMA_ID = realtimeSchema.$id;
/** `$id` of config-schemas/api-legacy.schema.json (the legacy `kind: api` dialect). */
export const LEGACY_SCHEMA_ID = legacySchema.$id;

let compiled: Record<ItemSchema, ValidateFunction> | undefined;

function validators(): Record<ItemSchema, ValidateFunction> {
  if (compiled) return compiled;
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true });
  // Annotations the loader uses to word messages; they do not validate anything.
  ajv.addKeyword({ keyword: 'x-format', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'x-pattern-description', schemaType: 'string' });
  ajv.addSchema(realtimeSchema as object);
  ajv.addSchema(legacySchema as object);
  const get = (ref: string): ValidateFunction => {
    const v = ajv.getSchema(ref);
    // The schemas ship with the engine: a missing definition is a broken install, not the user's config.
    if (!v) throw new EngineError('ENG_CONFIG_SCHEMA', `the bundled JSON Schema has no definition ${ref} (a broken install of myelin)`);
    return v;
  };
  compiled = {
    realtime: get(`${realtimeSchema.$id}#/definitions/api`),
    'legacy-api': get(`${legacySchema.$id}#/definitions/api`),
    'legacy-deployment': get(`${legacySchema.$id}#/definitions/deployment`),
    'traffic-splitter': get(`${realtimeSchema.$id}#/definitions/trafficSplitter`),
  };
  return compiled;
}

/** The whole-file validators (a list of items), for tests and tools that check a file against one dialect. */
export function fileValidator(dialect: 'realtime' | 'legacy'): ValidateFunction {
  validators();
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'x-format', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'x-pattern-description', schemaType: 'string' });
  return ajv.compile((dialect === 'realtime' ? realtimeSchema : legacySchema) as object);
}

const FORMAT_PARSERS: Readonly<Record<string, (v: unknown) => ParseResult<unknown>>> = {
  duration: parseDuration,
  cpu: parseCpu,
  memory: parseMemory,
  'int-or-percent': parseIntOrPercent,
};

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  object: 'a map',
  array: 'a list',
  boolean: 'a boolean (true or false)',
  null: 'null',
};

/** Hints for keys written in the wrong place (mostly the legacy dialect's keys in a RealtimeAPI). */
const MISPLACED_KEY_HINTS: Readonly<Record<string, string>> = {
  'compute.min_replicas': 'min_replicas belongs under autoscaling in the RealtimeAPI dialect',
  'compute.max_replicas': 'max_replicas belongs under autoscaling in the RealtimeAPI dialect',
  'compute.init_replicas': 'init_replicas belongs under autoscaling in the RealtimeAPI dialect',
  'compute.target_cpu_utilization': 'target_cpu_utilization belongs under autoscaling (with policy: cpu) in the RealtimeAPI dialect',
  '.model': 'in the RealtimeAPI dialect the model goes in predictor.model_path; "model" belongs to the legacy dialect (kind: api)',
  '.model_path': 'model_path belongs under predictor',
  '.tracker': 'tracker belongs to the legacy dialect (kind: api); the RealtimeAPI dialect calls it monitoring',
  '.request_handler': 'request_handler belongs to the legacy dialect (kind: api)',
  '.path': 'path belongs under predictor',
  '.predictor': 'the predictor block of Cortex 0.9-0.11 "kind: api" files is not supported; write the API in the RealtimeAPI dialect (kind: RealtimeAPI)',
  '.tensorflow': 'the tensorflow block of Cortex 0.9-0.11 "kind: api" files is not supported; write the API in the RealtimeAPI dialect (kind: RealtimeAPI, predictor.type: tensorflow)',
  '.onnx': 'the onnx block of Cortex 0.9-0.11 "kind: api" files is not supported; write the API in the RealtimeAPI dialect (kind: RealtimeAPI, predictor.type: onnx)',
  '.type': 'type belongs under predictor',
  'predictor.min_replicas': 'min_replicas belongs under autoscaling',
  'predictor.max_replicas': 'max_replicas belongs under autoscaling',
  'predictor.endpoint': 'endpoint belongs under networking',
  'predictor.cpu': 'cpu belongs under compute',
  'predictor.mem': 'mem belongs under compute',
  'predictor.gpu': 'gpu belongs under compute',
  'apis.shadow': "Cortex 0.32's shadow API (sent a copy of every request) is not supported by myelin's TrafficSplitter",
};

/**
 * Validates one item (a map) against `schema`. Returns every violation with its path and a message;
 * an empty list means the item has the right shape. Never throws for any input data.
 */
export function validateItem(schema: ItemSchema, item: unknown): SchemaIssue[] {
  const validate = validators()[schema];
  if (validate(item)) return [];
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of validate.errors ?? []) {
    const issue = toIssue(e, item);
    if (!issue) continue;
    const k = `${issue.path.join('\u0000')}\u0001${issue.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    issues.push(issue);
  }
  return issues;
}

function toIssue(e: ErrorObject, item: unknown): SchemaIssue | undefined {
  const path = pointerToPath(e.instancePath, item);
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  const predictorType = predictorTypeOf(item);
  const forType = e.schemaPath.includes('/then/') && predictorType ? ` for the ${predictorType} predictor type` : '';
  switch (e.keyword) {
    case 'if':
      return undefined; // the `then` errors say what is wrong
    case 'propertyNames':
      return undefined; // reported by the name's own pattern error (below)
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { path: [...path, missing], locatePath: path, message: `must be defined${forType}`, poisons: false };
    }
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((parent?.properties as Record<string, unknown>) ?? {});
      // The hints are about RealtimeAPI and legacy fields: a TrafficSplitter's own keys are simply listed.
      const splitter = path.length === 0 && (item as { kind?: unknown } | null)?.kind === 'TrafficSplitter';
      const message = splitter ? `key ${JSON.stringify(key)} is not supported by a TrafficSplitter (supported keys: ${allowed.join(', ')})` : unknownKeyMessage(key, path, allowed);
      return { path, locatePath: [...path, key], message, poisons: false };
    }
    case 'false schema': {
      return { path, locatePath: path, message: `is not a supported field${forType || ' here'}`, poisons: true };
    }
    default:
      break;
  }
  // Errors about a property name (env var names) come with `propertyName`.
  if (e.propertyName !== undefined) {
    const p = [...path, e.propertyName];
    return {
      path: p,
      locatePath: p,
      message: `invalid environment variable name ${JSON.stringify(e.propertyName)} (must contain only letters, digits and "_", and not start with a digit)`,
      poisons: true,
    };
  }
  const data = e.data;
  const format = parent?.['x-format'];
  if (typeof format === 'string' && FORMAT_PARSERS[format] && ['type', 'pattern', 'minimum', 'maxLength'].includes(e.keyword)) {
    const r = FORMAT_PARSERS[format](data);
    if (!r.ok) return { path, locatePath: path, message: r.message, poisons: true };
  }
  return { path, locatePath: path, message: keywordMessage(e, data, parent), poisons: true };
}

function keywordMessage(e: ErrorObject, data: unknown, parent: Record<string, unknown> | undefined): string {
  const got = describeValue(data);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type': {
      const types = Array.isArray(p.type) ? (p.type as string[]) : String(p.type).split(',');
      // `null` is allowed for optional sections, but "must be a map" says what to write.
      const shown = types.length > 1 ? types.filter((t) => t !== 'null') : types;
      const words = shown.map((t) => TYPE_WORDS[t] ?? t);
      return `must be ${joinOr(words)} (got ${got})`;
    }
    case 'enum':
    case 'const': {
      const values = e.keyword === 'enum' ? (p.allowedValues as unknown[]) : [p.allowedValue];
      const allowed = values.map((v) => JSON.stringify(v));
      const close = typeof data === 'string' ? closest(data, values.filter((v): v is string => typeof v === 'string')) : undefined;
      return `invalid value (got ${got}, must be ${joinOr(allowed)})${close ? ` (did you mean ${JSON.stringify(close)}?)` : ''}`;
    }
    case 'minimum':
      return `must be greater than or equal to ${p.limit} (got ${got})`;
    case 'exclusiveMinimum':
      return `must be greater than ${p.limit} (got ${got})`;
    case 'maximum':
      return `must be less than or equal to ${p.limit} (got ${got})`;
    case 'exclusiveMaximum':
      return `must be less than ${p.limit} (got ${got})`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit} characters long (got ${got})`;
    case 'maxLength':
      return `must be at most ${p.limit} characters long (got ${typeof data === 'string' ? data.length : got} characters)`;
    case 'minItems':
      return `must contain at least ${p.limit} ${p.limit === 1 ? 'item' : 'items'}`;
    case 'maxItems':
      return `must contain at most ${p.limit} items`;
    case 'pattern': {
      const desc = parent?.['x-pattern-description'];
      return typeof desc === 'string' ? `invalid value (got ${got}, must contain only ${desc})` : `invalid value (got ${got}, must match ${p.pattern})`;
    }
    default:
      return `${e.message ?? 'is invalid'} (got ${got})`;
  }
}

function unknownKeyMessage(key: string, path: DataPath, allowed: readonly string[]): string {
  const where = path.filter((s) => typeof s === 'string').join('.');
  const hint = MISPLACED_KEY_HINTS[`${where}.${key}`] ?? (where === '' ? MISPLACED_KEY_HINTS[`.${key}`] : undefined);
  if (hint) return `key ${JSON.stringify(key)} is not supported (${hint})`;
  const close = closest(key, allowed);
  if (close) return `key ${JSON.stringify(key)} is not supported (did you mean ${JSON.stringify(close)}?)`;
  return `key ${JSON.stringify(key)} is not supported (supported keys: ${allowed.join(', ')})`;
}

/** The allowed key closest to `key` by edit distance, if it is close enough to be a likely typo. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const k = key.toLowerCase().slice(0, 64);
  for (const a of allowed) {
    const d = editDistance(k, a.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function joinOr(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  if (words.length === 2) return `${words[0]} or ${words[1]}`;
  return `${words.slice(0, -1).join(', ')}, or ${words[words.length - 1]}`;
}

/** `/predictor/models/paths/0/name` → `['predictor', 'models', 'paths', 0, 'name']` (numbers where the data is a list). */
function pointerToPath(pointer: string, data: unknown): DataPath {
  if (pointer === '') return [];
  const out: (string | number)[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function predictorTypeOf(item: unknown): string | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  const predictor = (item as Record<string, unknown>).predictor;
  if (predictor === null || typeof predictor !== 'object') return undefined;
  const t = (predictor as Record<string, unknown>).type;
  return typeof t === 'string' ? t : undefined;
}
