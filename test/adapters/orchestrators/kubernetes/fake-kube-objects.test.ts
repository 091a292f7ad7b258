import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPatch, KubeStatusError, mergePatch, parseFieldSelector, parseLabelSelector, resolveIntOrPercent, selectorText } from '../../../harness/fake-kube-objects.js';

test('label selectors match as the API server does', () => {
  const labels = { 'myelin.dev/api': 'iris', 'myelin.dev/revision': 'r1', tier: 'web' };
  const cases = [
    { sel: '', want: true },
    { sel: 'myelin.dev/api=iris', want: true },
    { sel: 'myelin.dev/api==iris', want: true },
    { sel: 'myelin.dev/api=wine', want: false },
    { sel: 'myelin.dev/api!=wine', want: true },
    { sel: 'myelin.dev/api', want: true },
    { sel: '!myelin.dev/api', want: false },
    { sel: '!absent', want: true },
    { sel: 'absent!=x', want: true },
    { sel: 'tier in (web, db)', want: true },
    { sel: 'tier notin (web)', want: false },
    { sel: 'myelin.dev/api=iris,myelin.dev/revision in (r1,r2)', want: true },
    { sel: 'myelin.dev/api=iris,myelin.dev/revision=r2', want: false },
  ];
  for (const c of cases) assert.equal(parseLabelSelector(c.sel).matches(labels), c.want, `selector ${JSON.stringify(c.sel)}`);
  assert.throws(() => parseLabelSelector('a=(b'), (e: unknown) => e instanceof KubeStatusError && e.code === 400);
});

test('field selectors read dotted paths', () => {
  const pod = { metadata: { name: 'p1', namespace: 'default' }, status: { phase: 'Running' } };
  const cases = [
    { sel: 'metadata.name=p1', want: true },
    { sel: 'metadata.name=p2', want: false },
    { sel: 'metadata.name=p1,status.phase!=Pending', want: true },
    { sel: 'spec.nodeName=', want: true },
  ];
  for (const c of cases) assert.equal(parseFieldSelector(c.sel)(pod), c.want, c.sel);
});

test('selectorText renders matchLabels and matchExpressions', () => {
  assert.equal(
    selectorText({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'In', values: ['x', 'y'] }, { key: 'c', operator: 'DoesNotExist' }] }),
    'a=1,b in (x,y),!c',
  );
});

test('patches: merge, strategic (as merge), JSON patch; unknown types are 415', () => {
  const doc = { metadata: { name: 'd', annotations: { a: '1', b: '2' } }, spec: { replicas: 1, list: [1, 2] } };
  const cases = [
    { name: 'merge sets', type: 'application/merge-patch+json', patch: { spec: { replicas: 3 } }, want: { ...doc, spec: { replicas: 3, list: [1, 2] } } },
    {
      name: 'merge null deletes',
      type: 'application/merge-patch+json',
      patch: { metadata: { annotations: { a: null } } },
      want: { ...doc, metadata: { name: 'd', annotations: { b: '2' } } },
    },
    { name: 'merge replaces lists', type: 'application/merge-patch+json; charset=utf-8', patch: { spec: { list: [3] } }, want: { ...doc, spec: { replicas: 1, list: [3] } } },
    { name: 'strategic as merge', type: 'application/strategic-merge-patch+json', patch: { spec: { replicas: 2 } }, want: { ...doc, spec: { replicas: 2, list: [1, 2] } } },
    {
      name: 'json patch replace + add',
      type: 'application/json-patch+json',
      patch: [
        { op: 'replace', path: '/spec/replicas', value: 5 },
        { op: 'add', path: '/spec/list/-', value: 9 },
        { op: 'add', path: '/metadata/annotations/x~1y', value: 'z' },
      ],
      want: { metadata: { name: 'd', annotations: { a: '1', b: '2', 'x/y': 'z' } }, spec: { replicas: 5, list: [1, 2, 9] } },
    },
  ];
  for (const c of cases) assert.deepEqual(applyPatch(doc, c.type, c.patch), c.want, c.name);
  const failing = [
    { name: 'unknown type', type: 'application/json', patch: {}, code: 415 },
    { name: 'replace missing', type: 'application/json-patch+json', patch: [{ op: 'replace', path: '/spec/nope', value: 1 }], code: 422 },
    { name: 'test fails', type: 'application/json-patch+json', patch: [{ op: 'test', path: '/spec/replicas', value: 7 }], code: 422 },
  ];
  for (const c of failing) {
    assert.throws(() => applyPatch(doc, c.type, c.patch), (e: unknown) => e instanceof KubeStatusError && e.code === c.code, c.name);
  }
  assert.deepEqual(mergePatch(undefined, { a: { b: 1 } }), { a: { b: 1 } });
});

test('int-or-percent rounds like the Deployment controller', () => {
  const cases = [
    { v: 2, total: 10, up: true, want: 2 },
    { v: '25%', total: 3, up: true, want: 1 },
    { v: '25%', total: 3, up: false, want: 0 },
    { v: '100%', total: 4, up: false, want: 4 },
    { v: undefined, total: 4, up: false, want: 7 },
  ];
  for (const c of cases) assert.equal(resolveIntOrPercent(c.v, c.total, c.up, 7), c.want, JSON.stringify(c));
});
