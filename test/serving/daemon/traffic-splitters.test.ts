// The deploy-time checks of TrafficSplitters against what is deployed (serving/daemon/traffic-splitters.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import type { TrafficSplitterSpec } from '../../../core/config/traffic-splitter.js';
import { checkSplitters, sameWeights, splitterRevision } from '../../../serving/daemon/traffic-splitters.js';
import { fieldText } from '../../../core/config/load-api-specs.js';

const api = (name: string, keys?: string): ApiSpec => ({ name, networking: { endpoint: `/${name}`, ...(keys ? { apiKeys: { secret: keys } } : {}) } }) as unknown as ApiSpec;
const split = (name: string, apis: [string, number][], keys?: string, endpoint = `/${name}`): TrafficSplitterSpec => ({
  name,
  kind: 'TrafficSplitter',
  apis: apis.map(([n, weight]) => ({ name: n, weight })),
  networking: { endpoint, ...(keys ? { apiKeys: { secret: keys } } : {}) },
  configFile: '/p/myelin.yaml',
  projectDir: '/p',
});

type Case = {
  name: string;
  splitters?: TrafficSplitterSpec[];
  fileApis?: ApiSpec[];
  deployedApis?: ApiSpec[];
  deployedSplitters?: TrafficSplitterSpec[];
  want: string[];
};
const cases: Case[] = [
  { name: 'backends in the file', splitters: [split('s', [['a', 50], ['b', 50]])], fileApis: [api('a'), api('b')], want: [] },
  { name: 'a backend deployed before', splitters: [split('s', [['a', 100]])], deployedApis: [api('a')], want: [] },
  { name: 'an unknown backend', splitters: [split('s', [['a', 50], ['nope', 50]])], fileApis: [api('a')], want: ['s apis[1].name: api nope was not found or is not a RealtimeAPI (it is neither a RealtimeAPI of this file nor a deployed one)'] },
  { name: 'a deployed splitter as backend', splitters: [split('s', [['t', 100]])], deployedSplitters: [split('t', [['a', 100]])], want: ['s apis[0].name: api t was not found or is not a RealtimeAPI (it is a TrafficSplitter)'] },
  { name: 'the name of a deployed RealtimeAPI', splitters: [split('a', [['b', 100]])], deployedApis: [api('a'), api('b')], want: ['a name: a is deployed as a RealtimeAPI; delete it before deploying a TrafficSplitter of that name'] },
  { name: 'a RealtimeAPI named like a deployed splitter', fileApis: [api('s')], deployedSplitters: [split('s', [['a', 100]], undefined, '/x')], want: ['s name: s is deployed as a TrafficSplitter; delete it before deploying a RealtimeAPI of that name'] },
  { name: 'an endpoint taken', splitters: [split('s', [['a', 100]], undefined, '/a')], deployedApis: [api('a')], want: ['s networking.endpoint: endpoint is already being used by a'] },
  { name: 'its own endpoint on redeploy', splitters: [split('s', [['a', 100]])], deployedApis: [api('a')], deployedSplitters: [split('s', [['a', 100]])], want: [] },
  { name: 'a keyed backend, a splitter without keys', splitters: [split('s', [['a', 100]])], fileApis: [api('a', 'K')], want: ['s apis[0].name: a requires an API key (networking.api_keys); give this TrafficSplitter networking.api_keys too, or its endpoint would serve a without one'] },
  { name: 'a keyed backend, a splitter with keys', splitters: [split('s', [['a', 100]], 'S')], fileApis: [api('a', 'K')], want: [] },
  { name: 'keys added to the API of a deployed open splitter', fileApis: [api('a', 'K')], deployedApis: [api('a')], deployedSplitters: [split('s', [['a', 100]])], want: ["a networking.api_keys: TrafficSplitter s serves a without API keys; give it networking.api_keys first, or a's keys could be bypassed"] },
  { name: '... unless the same file gives that splitter keys', fileApis: [api('a', 'K')], splitters: [split('s', [['a', 100]], 'S')], deployedApis: [api('a')], deployedSplitters: [split('s', [['a', 100]])], want: [] },
];

for (const c of cases) {
  test(c.name, () => {
    const deployedSplitters = c.deployedSplitters ?? [];
    const owners = new Map<string, string>([...(c.deployedApis ?? []).map((a) => [a.networking.endpoint, a.name] as [string, string]), ...deployedSplitters.map((s) => [s.networking.endpoint, s.name] as [string, string])]);
    const got = checkSplitters({
      splitters: c.splitters ?? [],
      fileApis: c.fileApis ?? [],
      deployedApis: new Map((c.deployedApis ?? []).map((a) => [a.name, a])),
      deployedSplitters: new Map(deployedSplitters.map((s) => [s.name, s])),
      endpointOwners: owners,
      problem: (name, path, message) => ({ file: 'myelin.yaml', line: 1, col: 1, api: name, field: fieldText(path), message, severity: 'error' }),
    }).map((p) => `${p.api} ${p.field}: ${p.message}`);
    assert.deepEqual(got, c.want);
  });
}

test('revision and weight comparison', () => {
  assert.equal(splitterRevision(split('s', [['a', 30], ['b', 70]])), splitterRevision(split('s', [['a', 30], ['b', 70]])));
  assert.notEqual(splitterRevision(split('s', [['a', 30], ['b', 70]])), splitterRevision(split('s', [['a', 40], ['b', 60]])));
  assert.notEqual(splitterRevision(split('s', [['a', 100]])), splitterRevision(split('s', [['a', 100]], 'KEY')));
  assert.equal(sameWeights(split('s', [['a', 30]]).apis, split('t', [['a', 30]]).apis), true);
  assert.equal(sameWeights(split('s', [['a', 30], ['b', 70]]).apis, split('s', [['b', 70], ['a', 30]]).apis), false);
});
