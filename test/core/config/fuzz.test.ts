import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { INTERNAL_ERROR_PREFIX, loadApiSpecs } from '../../../core/config/load-api-specs.js';
import { ConfigError, formatConfigProblem } from '../../../core/errors.js';
import { makeProject, PROJECT_FILES } from './config-test-helpers.js';

/** mulberry32: a small seeded PRNG, so a failure can be replayed from its seed and iteration. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const examplesDir = join(repo, 'config-schemas/examples');
const BASES: readonly string[] = [
  ...readdirSync(examplesDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => readFileSync(join(examplesDir, f), 'utf8')),
  '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    models:\n      paths:\n        - name: a\n          model_path: models/a\n      cache_size: 1\n      disk_cache_size: 1\n',
  '- kind: api\n  name: legacy\n  model: models/iris\n  request_handler: handler.py\n  tracker: {model_type: regression}\n  compute: {min_replicas: 1, max_replicas: 2}\n',
];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const WEIRD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 1,
  '',
  ' ',
  '0',
  '60',
  '10s',
  '200m',
  '1Gi',
  '25%',
  '150%',
  '../../../etc/passwd',
  '/etc/passwd',
  's3://',
  'gs://a',
  'https://',
  'file:///',
  'ftp://x/y',
  'x'.repeat(5000),
  '\u0000\u0001',
  '🙂'.repeat(10),
  'CORTEX_X',
  '__proto__',
  'constructor',
  [],
  [1, [2, [3]]],
  {},
  { __proto__: { polluted: true } },
  { a: { b: { c: { d: 1 } } } },
];

function randomString(r: Rand): string {
  const alphabet = 'abcXYZ019_-./:%*&!{}[]#\'" \t\n\\µ🙂';
  const n = Math.floor(r() * 20);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)] ?? 'a';
  return s;
}

function randomValue(r: Rand): unknown {
  const k = r();
  if (k < 0.6) return structuredClone(pick(r, WEIRD_VALUES));
  if (k < 0.8) return randomString(r);
  if (k < 0.9) return (r() - 0.5) * 10 ** Math.floor(r() * 20);
  let v: unknown = 1;
  for (let i = Math.floor(r() * 120); i > 0; i--) v = r() < 0.5 ? [v] : { k: v };
  return v;
}

/** All containers (objects and arrays) in `root`, with their paths. */
function containers(root: unknown): { node: Record<string, unknown> | unknown[] }[] {
  const out: { node: Record<string, unknown> | unknown[] }[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const n = stack.pop();
    if (n !== null && typeof n === 'object') {
      out.push({ node: n as Record<string, unknown> | unknown[] });
      for (const v of Object.values(n)) stack.push(v);
    }
  }
  return out;
}

/** Mutates parsed data: deleted keys, wrong types, random strings, huge numbers, deep nesting, unknown keys. */
function mutateData(r: Rand, text: string): string {
  const data = parse(text) as unknown;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const all = containers(data);
    if (all.length === 0) break;
    const { node } = pick(r, all);
    const keys = Object.keys(node);
    const op = r();
    if (Array.isArray(node)) {
      if (op < 0.3 && node.length > 0) node.splice(Math.floor(r() * node.length), 1);
      else if (op < 0.6 && node.length > 0) node[Math.floor(r() * node.length)] = randomValue(r);
      else node.push(r() < 0.5 && node.length > 0 ? structuredClone(node[0]) : randomValue(r));
    } else if (op < 0.3 && keys.length > 0) {
      delete node[pick(r, keys)];
    } else if (op < 0.8 && keys.length > 0) {
      node[pick(r, keys)] = randomValue(r);
    } else {
      node[r() < 0.5 ? randomString(r) : pick(r, ['name', 'kind', 'policy', 'tick', 'env', 'models', 'paths', 'cpu', 'inf'])] = randomValue(r);
    }
  }
  return stringify(data);
}

/** Mutates the text: deleted or inserted characters, YAML punctuation, anchors and aliases, truncation. */
function mutateText(r: Rand, text: string): string {
  let t = text;
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (t.length + 1));
    const op = r();
    if (op < 0.25) t = t.slice(0, at) + t.slice(at + Math.floor(r() * 20));
    else if (op < 0.6) t = t.slice(0, at) + pick(r, [':', '- ', '[', '{', '}', ']', '&a ', '*a', '<<: *a\n', '\t', '\u0000', '"', "'", '|', '>', '#', '\n', '  ', '---\n', '? ', '!!binary ', '%YAML 1.1\n']) + t.slice(at);
    else if (op < 0.8) t = t.slice(0, at) + randomString(r) + t.slice(at);
    else if (op < 0.9) t = t.slice(0, at);
    else {
      const lines = t.split('\n');
      const l = Math.floor(r() * lines.length);
      lines.splice(l, 0, lines[l] ?? '');
      t = lines.join('\n');
    }
  }
  return t;
}

/** Hostile shapes: alias bombs, deep nesting, long lines. */
function hostile(r: Rand): string {
  const k = Math.floor(r() * 4);
  if (k === 0) {
    const levels = 3 + Math.floor(r() * 8);
    const lines = ['- name: bomb', '  kind: RealtimeAPI', '  predictor:', '    type: python', '    path: predictor.py', '    config:', '      l0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < levels; i++) lines.push(`      l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    return lines.join('\n');
  }
  if (k === 1) {
    const d = Math.floor(r() * 3000);
    return `- name: deep\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    config: ${'['.repeat(d)}${r() < 0.5 ? ']'.repeat(d) : ''}\n`;
  }
  if (k === 2) {
    const d = Math.floor(r() * 150);
    return `- name: deep\n${Array.from({ length: d }, (_, i) => `${' '.repeat(2 + i * 2)}k${i}:`).join('\n')} 1\n`;
  }
  return `- name: ${'a'.repeat(Math.floor(r() * 100_000))}\n  kind: RealtimeAPI\n`;
}

/** What must hold of any spec the loader accepts. */
function checkInvariants(s: ApiSpec): void {
  const a = s.autoscaling;
  assert.ok(Number.isSafeInteger(a.minReplicas) && a.minReplicas >= 1);
  assert.ok(a.minReplicas <= a.initReplicas && a.initReplicas <= a.maxReplicas, 'min <= init <= max');
  assert.ok(a.targetReplicaConcurrency > 0 && a.targetReplicaConcurrency <= a.maxReplicaConcurrency);
  assert.ok(a.tickMs >= 1000 && a.windowMs >= a.tickMs && a.windowMs % a.tickMs === 0);
  assert.ok(a.panicWindowMs >= a.tickMs && a.panicWindowMs <= a.windowMs);
  assert.ok(a.maxUpscaleFactor > 1 && a.maxDownscaleFactor >= 0 && a.maxDownscaleFactor < 1);
  assert.ok(!(s.updateStrategy.maxSurge.value === 0 && s.updateStrategy.maxUnavailable.value === 0));
  assert.ok(s.networking.endpoint.startsWith('/'));
  assert.ok(s.predictor.timeoutMs > 0 && s.networking.maxBodyBytes > 0);
  assert.ok(/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(s.name) && s.name.length <= 42);
  for (const k of Object.keys(s.predictor.env)) assert.ok(!k.startsWith('CORTEX_') && !k.startsWith('MYELIN_'));
  const b = s.predictor.serverSideBatching;
  if (b) assert.ok(b.maxBatchSize <= s.predictor.processesPerReplica * s.predictor.threadsPerProcess || s.compute.inf > 0);
  assert.ok(Object.isFrozen(s));
}

test('fuzz: mutated configurations only ever give specs or ConfigErrors with located problems', () => {
  using project = makeProject(PROJECT_FILES);
  const seed = 20_240_601;
  const r = prng(seed);
  const iterations = 1500;
  const counts = { accepted: 0, rejected: 0 };
  for (let i = 0; i < iterations; i++) {
    const base = pick(r, BASES);
    const k = r();
    const text = k < 0.45 ? mutateData(r, base) : k < 0.9 ? mutateText(r, base) : hostile(r);
    const context = `seed ${seed}, iteration ${i}:\n${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}`;
    try {
      const { specs, warnings } = loadApiSpecs(text, { file: 'cortex.yaml', cwd: project.dir, probe: nodeProjectFileSystem });
      counts.accepted++;
      for (const s of specs) checkInvariants(s);
      for (const w of warnings) assert.equal(w.severity, 'warning', context);
    } catch (err) {
      if (!(err instanceof ConfigError)) assert.fail(`${context}\nthrew ${String(err)}\n${(err as Error).stack}`);
      counts.rejected++;
      assert.ok(err.problems.length > 0, context);
      const lines = text.split('\n').length;
      for (const p of err.problems) {
        assert.ok(!p.message.startsWith(INTERNAL_ERROR_PREFIX), `${context}\n${formatConfigProblem(p)}`);
        assert.ok(p.line >= 1 && p.line <= lines + 1 && p.col >= 1, `${context}\nbad position ${formatConfigProblem(p)}`);
      }
      assert.ok(err.problems.some((p) => p.severity === 'error'), context);
    }
  }
  // Both outcomes must be exercised, or the mutations are too weak (or too strong) to test anything.
  assert.ok(counts.accepted > 30 && counts.rejected > 300, JSON.stringify(counts));
});
