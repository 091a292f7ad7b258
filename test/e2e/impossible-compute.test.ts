// Compute the machine can never give (more CPU or memory than it has, a GPU where there is none) is
// refused at deploy with Cortex's meaning and the field's position, instead of a replica pending for
// minutes; compute that is only busy right now still waits (issue 11, #12).
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, before, test } from 'node:test';
import { CliFailure, removeDir, startE2eDaemon, type E2eDaemon } from './e2e-harness.js';

let d: E2eDaemon;
before(async () => {
  d = await startE2eDaemon();
});
after(async () => {
  await d?.close();
  if (d) await removeDir(d.dir);
});

test('cpu and gpu beyond the machine refuse the deploy at their lines; nothing is created', async () => {
  const cores = availableParallelism();
  const yaml = `- name: too-big
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
  compute:
    cpu: ${cores + 1}
    gpu: 1
`;
  // `myelin deploy -o json`: exit 1 and `{ errors: [{ file, line, col, field, message }] }` (a ConfigError).
  await assert.rejects(d.deploy(yaml), (err: unknown) => {
    assert.ok(err instanceof CliFailure, String(err));
    assert.equal(err.result.code, 1, err.message);
    assert.ok(err.problems.length > 0 && err.problems.every((p) => p.line !== undefined && p.field), JSON.stringify(err.json));
    const byField = Object.fromEntries(err.problems.map((p) => [p.field, p]));
    assert.match(byField['compute.cpu'].message, new RegExp(`^no instance can satisfy the requested cpu quantity - requested ${cores + 1} cpu but this machine only has ${cores} cpu$`));
    assert.deepEqual([byField['compute.cpu'].line, byField['compute.cpu'].col], [7, 5]);
    // This machine has no GPU (nvidia-smi is absent here).
    assert.match(byField['compute.gpu'].message, /requested 1 gpu but this machine only has 0 gpu/);
    return true;
  });
  await assert.rejects(d.get('too-big'));
});

test('compute that fits the machine is accepted; the API view redacts env values (issue 11, #7)', async () => {
  await d.deploy(`- name: fits
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    env:
      API_KEY: s3cr3t-value
  compute:
    cpu: 100m
`);
  const detail = await d.get('fits');
  assert.equal(detail.name, 'fits');
  const env = (detail.spec as { predictor: { env: Record<string, string> } }).predictor.env;
  assert.equal(env.API_KEY, '<redacted>');
  // Over the control API as well.
  const res = await fetch(`${d.controlUrl}/v1/apis/fits`, { headers: { authorization: `Bearer ${d.token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.doesNotMatch(text, /s3cr3t-value/);
});
