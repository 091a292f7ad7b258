// Every configuration field the docs name as `section.field` (predictor.*, networking.*, compute.*,
// autoscaling.*, monitoring.*, update_strategy.*, models.*, server_side_batching.*) exists in the API
// schemas, so the docs cannot drift from what the loader accepts (issue 11, "docs that lie").
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../../', import.meta.url));
type Schema = { properties?: Record<string, Schema>; $ref?: string; definitions?: Record<string, Schema>; items?: Schema; allOf?: Schema[]; oneOf?: Schema[]; anyOf?: Schema[] };

function load(name: string): Schema {
  return JSON.parse(readFileSync(join(root, 'config-schemas', name), 'utf8')) as Schema;
}

/** Property names reachable from `s` (following $ref, items, allOf/oneOf/anyOf), by dotted path. */
function collect(s: Schema, defs: Record<string, Schema>, prefix: string, out: Set<string>, depth = 0): void {
  if (depth > 12) return;
  if (s.$ref) {
    const def = defs[s.$ref.replace('#/definitions/', '')];
    if (def) collect(def, defs, prefix, out, depth + 1);
  }
  for (const sub of [...(s.allOf ?? []), ...(s.oneOf ?? []), ...(s.anyOf ?? [])]) collect(sub, defs, prefix, out, depth + 1);
  if (s.items) collect(s.items, defs, prefix, out, depth + 1);
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    out.add(path);
    collect(v, defs, path, out, depth + 1);
  }
}

const fields = new Set<string>();
for (const file of ['api-realtime.schema.json', 'api-legacy.schema.json']) {
  const schema = load(file);
  const defs = schema.definitions ?? {};
  for (const d of Object.values(defs)) collect(d, defs, '', fields);
  collect(schema, defs, '', fields);
}
/** Every field path's suffixes too (`models.cache_size` from `predictor.models.cache_size`). */
const suffixes = new Set<string>();
for (const f of fields) {
  const parts = f.split('.');
  for (let i = 0; i < parts.length; i++) suffixes.add(parts.slice(i).join('.'));
}

const SECTIONS = ['predictor', 'networking', 'compute', 'autoscaling', 'monitoring', 'update_strategy', 'models', 'server_side_batching', 'multi_model_reloading'];
/** A whole code span that is a field path (`networking.max_body_size`), not a file name (`predictor.py`). */
const FIELD = new RegExp(`\`((?:${SECTIONS.join('|')})\\.[a-z_]+(?:\\.[a-z_]+)*)\``, 'g');
const FILE_NAME = /\.(py|ts|js|mjs|log|yaml|yml|json|txt|md)$/;

test('every `section.field` the docs and README name exists in the API schemas', () => {
  const docs = [join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))];
  const missing: string[] = [];
  for (const doc of docs) {
    const text = readFileSync(doc, 'utf8');
    for (const m of text.matchAll(FIELD)) {
      if (!FILE_NAME.test(m[1]) && !suffixes.has(m[1])) missing.push(`${doc.slice(root.length)}: ${m[1]}`);
    }
  }
  assert.deepEqual([...new Set(missing)], []);
});

test('the check sees a field that does not exist (it cannot pass vacuously)', () => {
  assert.ok(suffixes.has('networking.max_body_size'));
  assert.ok(suffixes.has('models.cache_size'));
  assert.equal(suffixes.has('networking.max_body_bytes'), false);
});
