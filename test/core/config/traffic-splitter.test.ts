// kind: TrafficSplitter in the loader (core/config/traffic-splitter.ts, load-api-specs.ts): the
// resolved spec, and every problem a file alone can show, each as line:col: name: field: message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadIn, PROJECT_FILES } from './config-test-helpers.js';

/** A python API named `name` (5 lines). */
const API = (name: string): string => `- name: ${name}\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n`;
/** A splitter `name` over `apis` as [name, weight] (3 + 2 lines per API). */
const SPLIT = (name: string, apis: readonly (readonly [string, unknown])[], extra = ''): string =>
  `- name: ${name}\n  kind: TrafficSplitter\n  apis:\n${apis.map(([n, w]) => `    - name: ${n}\n      weight: ${w}\n`).join('')}${extra}`;

test('a splitter with its APIs in one file resolves to a TrafficSplitterSpec beside the ApiSpecs', () => {
  const got = loadIn(API('a') + API('b') + SPLIT('canary', [['a', 30], ['b', 70]], '  networking:\n    endpoint: ab/\n    api_keys:\n      secret: CANARY_KEY\n'), PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs.map((s) => s.name), ['a', 'b']);
  assert.deepEqual(JSON.parse(JSON.stringify(got.result.splitters)), [
    {
      name: 'canary',
      kind: 'TrafficSplitter',
      apis: [
        { name: 'a', weight: 30 },
        { name: 'b', weight: 70 },
      ],
      networking: { endpoint: '/ab', apiKeys: { secret: 'CANARY_KEY' } },
      configFile: `${got.dir}/cortex.yaml`,
      projectDir: got.dir,
    },
  ]);
  assert.ok(Object.isFrozen(got.result.splitters[0].apis[0]), 'deeply frozen');
});

test('a file with a splitter only loads (its APIs are checked at deploy); the endpoint defaults to /<name>', () => {
  const got = loadIn(SPLIT('canary', [['deployed-a', 100]]), PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs, []);
  assert.equal(got.result.splitters[0].networking.endpoint, '/canary');
});

type Case = { readonly name: string; readonly yaml: string; readonly want: readonly string[] };
const cases: readonly Case[] = [
  { name: 'weights that do not sum to 100 (Cortex\'s words)', yaml: SPLIT('s', [['a', 30], ['b', 60]]), want: ['3:3: s: apis: expected weights to sum to 100 but found 90'] },
  { name: 'a weight over 100 (the sum is not reported on top)', yaml: SPLIT('s', [['a', 101]]), want: ['5:7: s: apis[0].weight: must be less than or equal to 100 (got 101)'] },
  { name: 'a negative weight', yaml: SPLIT('s', [['a', -5], ['b', 105]]), want: ['5:7: s: apis[0].weight: must be greater than or equal to 0 (got -5)', '7:7: s: apis[1].weight: must be less than or equal to 100 (got 105)'] },
  { name: 'a weight that is not an integer', yaml: SPLIT('s', [['a', 'half'], ['b', 50]]), want: ['5:7: s: apis[0].weight: must be an integer (got "half")'] },
  { name: 'an API listed twice', yaml: SPLIT('s', [['a', 50], ['a', 50]]), want: ['6:7: s: apis[1].name: api "a" is listed more than once (also apis[0]); each API may appear once in a TrafficSplitter'] },
  { name: 'no apis', yaml: '- name: s\n  kind: TrafficSplitter\n  apis: []\n', want: ['3:3: s: apis: must contain at least 1 item'] },
  { name: 'apis missing', yaml: '- name: s\n  kind: TrafficSplitter\n', want: ['1:3: s: apis: must be defined'] },
  { name: 'an entry without weight', yaml: '- name: s\n  kind: TrafficSplitter\n  apis:\n    - name: a\n', want: ['4:7: s: apis[0].weight: must be defined'] },
  {
    name: 'a splitter over a splitter of the same file',
    yaml: SPLIT('inner', [['a', 100]]) + SPLIT('outer', [['inner', 100]]),
    want: ['9:7: outer: apis[0].name: "inner" is a TrafficSplitter; the apis of a TrafficSplitter must be RealtimeAPIs'],
  },
  {
    name: 'a name used by a RealtimeAPI of the file',
    yaml: API('a') + SPLIT('a', [['a', 100]]),
    want: ['6:3: a: name: API name "a" is already used by another API (line 1); API names must be unique'],
  },
  {
    name: 'an endpoint used by a RealtimeAPI of the file',
    yaml: API('a') + SPLIT('s', [['a', 100]], '  networking:\n    endpoint: /a\n'),
    want: ['12:5: s: networking.endpoint: endpoint /a is already used by API "a" (line 1); endpoints must be unique'],
  },
  {
    name: 'a RealtimeAPI on the default endpoint of an earlier splitter',
    yaml: SPLIT('s', [['x', 100]]) + API('b').replace('    path: predictor.py\n', '    path: predictor.py\n  networking:\n    endpoint: /s\n'),
    want: ['12:5: b: networking.endpoint: endpoint /s is already used by API "s" (line 1); endpoints must be unique'],
  },
  { name: 'an invalid endpoint', yaml: SPLIT('s', [['a', 100]], '  networking:\n    endpoint: /a b\n'), want: ['7:5: s: networking.endpoint: invalid endpoint (got "/a b", must be a URL path of letters, digits, "-", "_", "." and "~" separated by "/", e.g. "/iris-classifier")'] },
  {
    name: 'fields a splitter does not have',
    yaml: SPLIT('s', [['a', 100]], '  predictor:\n    type: python\n  networking:\n    local_port: 9000\n'),
    want: [
      '6:3: s: key "predictor" is not supported by a TrafficSplitter (supported keys: name, kind, apis, networking)',
      '9:5: s: networking: key "local_port" is not supported (supported keys: endpoint, api_gateway, api_keys)',
    ],
  },
  { name: 'an api_keys secret that is not a variable name', yaml: SPLIT('s', [['a', 100]], '  networking:\n    api_keys:\n      secret: my-key\n'), want: ["8:7: s: networking.api_keys.secret: invalid value (got \"my-key\", must contain only letters, digits and '_', not starting with a digit (an environment variable name))"] },
  {
    name: "Cortex 0.32's shadow",
    yaml: '- name: s\n  kind: TrafficSplitter\n  apis:\n    - name: a\n      weight: 100\n      shadow: true\n',
    want: ['6:7: s: apis[0]: key "shadow" is not supported (Cortex 0.32\'s shadow API (sent a copy of every request) is not supported by myelin\'s TrafficSplitter)'],
  },
  { name: 'api_gateway: a warning only', yaml: SPLIT('s', [['a', 100]], '  networking:\n    api_gateway: none\n'), want: ['7:5: s: networking.api_gateway: warning: has no effect: myelin has no API Gateway; the TrafficSplitter is served by the myelin gateway'] },
];

for (const c of cases) {
  test(`problem: ${c.name}`, () => {
    const got = loadIn(c.yaml, PROJECT_FILES);
    assert.deepEqual(got.lines, c.want, `want:\n${c.want.join('\n')}\ngot:\n${got.lines.join('\n')}`);
  });
}

test('a RealtimeAPI with networking.api_keys keeps the secret name in its spec (never a key)', () => {
  const got = loadIn(`${API('a')}  networking:\n    api_keys:\n      secret: A_KEY\n`, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs[0].networking.apiKeys, { secret: 'A_KEY' });
  const missing = loadIn(`${API('a')}  networking:\n    api_keys: {}\n`, PROJECT_FILES);
  assert.deepEqual(missing.lines, ['7:5: a: networking.api_keys.secret: must be defined']);
});
