/**
 * Pure helpers of the fake Kubernetes API server (test/harness/fake-kube-api.ts): label and field
 * selectors, the three patch formats, `Status` objects and int-or-percent resolution — each written
 * to match what a real API server does for the cases the fake serves.
 */

/** A JSON object as the API server stores it. */
export type KubeObject = Record<string, any>;

/** An error the fake answers with a `Status` body (404, 409, 410, 415, 422, …). */
export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: KubeObject,
  ) {
    super(message);
  }
  /** The `meta/v1 Status` body a real API server sends for this error. */
  toStatus(): KubeObject {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** `<plural>.<group> "<name>" not found` (404), as the API server words it. */
export function notFound(plural: string, group: string, name: string): KubeStatusError {
  const res = group ? `${plural}.${group}` : plural;
  return new KubeStatusError(404, 'NotFound', `${res} "${name}" not found`, { name, group: group || undefined, kind: plural });
}

export function alreadyExists(plural: string, group: string, name: string): KubeStatusError {
  const res = group ? `${plural}.${group}` : plural;
  return new KubeStatusError(409, 'AlreadyExists', `${res} "${name}" already exists`, { name, group: group || undefined, kind: plural });
}

export function conflict(plural: string, group: string, name: string): KubeStatusError {
  const res = group ? `${plural}.${group}` : plural;
  return new KubeStatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${res} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: group || undefined, kind: plural },
  );
}

export function invalid(kind: string, name: string, message: string): KubeStatusError {
  return new KubeStatusError(422, 'Invalid', `${kind} "${name}" is invalid: ${message}`, { name, kind });
}

export function badRequest(message: string): KubeStatusError {
  return new KubeStatusError(400, 'BadRequest', message);
}

// ---------------------------------------------------------------------------------------------
// Label selectors (k8s.io/apimachinery/pkg/labels syntax)

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: readonly string[] }
  | { op: 'exists' | 'notexists'; key: string };

/** A parsed label selector; `matches` on an object's `metadata.labels`. The empty selector matches everything. */
export interface LabelSelector {
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Parses `a=b,c!=d,e,!f,g in (x,y),h notin (z)`; throws a 400 `KubeStatusError` on bad syntax. */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  const reqs: Requirement[] = [];
  for (const part of splitTopLevel(text ?? '')) {
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      reqs.push({ op: m[2] as 'in' | 'notin', key: m[1], values: m[3].split(',').map((v) => v.trim()) });
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(part))) {
      reqs.push({ op: m[2] === '!=' ? 'neq' : 'eq', key: m[1], value: m[3] });
    } else if ((m = /^!\s*([\w./-]+)$/.exec(part))) {
      reqs.push({ op: 'notexists', key: m[1] });
    } else if ((m = /^([\w./-]+)$/.exec(part))) {
      reqs.push({ op: 'exists', key: m[1] });
    } else {
      throw badRequest(`unable to parse requirement: ${JSON.stringify(part)}`);
    }
  }
  return {
    matches(labels) {
      const l = labels ?? {};
      return reqs.every((r) => {
        const has = Object.prototype.hasOwnProperty.call(l, r.key);
        switch (r.op) {
          case 'eq':
            return has && l[r.key] === r.value;
          case 'neq':
            return !has || l[r.key] !== r.value;
          case 'in':
            return has && r.values.includes(l[r.key]);
          case 'notin':
            return !has || !r.values.includes(l[r.key]);
          case 'exists':
            return has;
          case 'notexists':
            return !has;
        }
      });
    },
  };
}

/** Parses a field selector (`metadata.name=x,status.phase!=Running`); matches on dotted paths of the object. */
export function parseFieldSelector(text: string | null | undefined): (obj: KubeObject) => boolean {
  const reqs = splitTopLevel(text ?? '').map((part) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid field selector: ${JSON.stringify(part)}`);
    return { path: m[1].split('.'), neq: m[2] === '!=', value: m[3] };
  });
  return (obj) =>
    reqs.every((r) => {
      let v: any = obj;
      for (const k of r.path) v = v?.[k];
      const s = v === undefined || v === null ? '' : String(v);
      return r.neq ? s !== r.value : s === r.value;
    });
}

/** The `matchLabels`/`matchExpressions` of a LabelSelector object as selector text (for Scale `status.selector`). */
export function selectorText(sel: KubeObject | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const op = String(e.operator);
    if (op === 'In') parts.push(`${e.key} in (${e.values.join(',')})`);
    else if (op === 'NotIn') parts.push(`${e.key} notin (${e.values.join(',')})`);
    else if (op === 'Exists') parts.push(e.key);
    else if (op === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

// ---------------------------------------------------------------------------------------------
// Patches

/** RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, everything else (lists too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON patch (`add`, `replace`, `remove`, `test`) on a copy of `target`; a failing op is a 422. */
export function jsonPatch(target: KubeObject, ops: unknown): KubeObject {
  if (!Array.isArray(ops)) throw badRequest('json patch must be a list of operations');
  const doc = structuredClone(target);
  for (const op of ops as KubeObject[]) {
    const toks = pointer(String(op.path));
    const last = toks.pop();
    let parent: any = doc;
    for (const t of toks) {
      parent = Array.isArray(parent) ? parent[Number(t)] : parent?.[t];
      if (parent === undefined || parent === null) throw new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: path ${op.path} does not exist`);
    }
    if (last === undefined) throw badRequest('json patch on the whole document is not supported');
    switch (op.op) {
      case 'add':
      case 'replace':
        if (op.op === 'replace' && !(Array.isArray(parent) ? Number(last) < parent.length : last in parent)) {
          throw new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: ${op.path}`);
        }
        if (Array.isArray(parent)) {
          if (last === '-') parent.push(structuredClone(op.value));
          else if (op.op === 'add') parent.splice(Number(last), 0, structuredClone(op.value));
          else parent[Number(last)] = structuredClone(op.value);
        } else parent[last] = structuredClone(op.value);
        break;
      case 'remove':
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else if (last in parent) delete parent[last];
        else throw new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: remove operation does not apply: doc is missing path: ${op.path}`);
        break;
      case 'test':
        if (JSON.stringify(Array.isArray(parent) ? parent[Number(last)] : parent[last]) !== JSON.stringify(op.value)) {
          throw new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed`);
        }
        break;
      default:
        throw badRequest(`unsupported json patch operation ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}

/** Applies a PATCH body according to its content type; 415 for types the API server does not take. */
export function applyPatch(target: KubeObject, contentType: string, body: unknown): KubeObject {
  const type = contentType.split(';')[0].trim();
  switch (type) {
    case 'application/merge-patch+json':
    // Strategic merge patch is treated as a merge patch: the difference (lists merged by key) never
    // matters for what myelin and the kubectl checks send (`spec.replicas`, annotations).
    case 'application/strategic-merge-patch+json':
      return mergePatch(target, body) as KubeObject;
    case 'application/json-patch+json':
      return jsonPatch(target, body);
    default:
      throw new KubeStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${JSON.stringify(type)})`);
  }
}

/** Resolves a RollingUpdate `maxSurge`/`maxUnavailable` (int or `"25%"`) against `total`, rounding like the Deployment controller. */
export function resolveIntOrPercent(v: unknown, total: number, roundUp: boolean, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(String(v));
  if (!m) return Number(v);
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}
