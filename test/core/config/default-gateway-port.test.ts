import assert from 'node:assert/strict';
import { test } from 'node:test';
import realtimeSchema from '../../../config-schemas/api-realtime.schema.json' with { type: 'json' };
import { DEFAULT_GATEWAY_PORT } from '../../../core/config/api-spec.js';
import { loadApiSpecs } from '../../../core/config/load-api-specs.js';

test('DEFAULT_GATEWAY_PORT is the schema default of networking.local_port and what the loader fills in', () => {
  assert.equal(DEFAULT_GATEWAY_PORT, 8888, "Cortex's port");
  const found: number[] = [];
  // Every `local_port` property of the schema, wherever it is defined.
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'local_port' && typeof (v as { default?: unknown }).default === 'number') found.push((v as { default: number }).default);
      walk(v);
    }
  };
  walk(realtimeSchema);
  assert.ok(found.length > 0, 'the schema declares a local_port default');
  for (const got of found) assert.equal(got, DEFAULT_GATEWAY_PORT);
  const { specs } = loadApiSpecs('- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: p.py\n', { file: 'cortex.yaml', cwd: '/tmp' });
  assert.equal(specs[0].networking.localPort, DEFAULT_GATEWAY_PORT);
});

