// The TrafficSplitter renderers of `myelin get` (serving/cli/commands/get.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderSplitterDetail, renderSplitterList } from '../../../serving/cli/commands/get.js';

const view = {
  name: 'canary',
  status: 'live',
  url: 'http://127.0.0.1:8888/canary',
  lastUpdated: 0,
  requests: 1000,
  unauthorized: 3,
  apiKeysSecret: 'CANARY_KEY',
  apis: [
    { name: 'v1', weight: 70, status: 'live', ready: true, requests: 700, share: 0.7 },
    { name: 'v2', weight: 30, status: 'updating', ready: false, requests: 300, share: 0.3 },
  ],
};

test('myelin get <splitter>: a row per backend with weight, readiness and share', () => {
  const got = renderSplitterDetail(view, 65_000);
  const lines = got.split('\n');
  assert.match(lines[0], /^api\s+weight\s+status\s+ready\s+requests\s+share$/);
  assert.match(lines[1], /^v1\s+70%\s+live\s+yes\s+700\s+70\.0%$/);
  assert.match(lines[2], /^v2\s+30%\s+updating\s+no\s+300\s+30\.0%$/);
  assert.match(got, /endpoint: http:\/\/127\.0\.0\.1:8888\/canary/);
  assert.match(got, /api keys: secret CANARY_KEY \(3 requests refused\)/);
});

test('myelin get: splitters listed as name:weight, nothing when there are none', () => {
  assert.match(renderSplitterList([view], 65_000), /canary\s+live\s+v1:70 v2:30/);
  assert.equal(renderSplitterList([], 0), '');
});
