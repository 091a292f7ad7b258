import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { StateStore } from '../../../serving/daemon/state-store.js';

test('StateStore keeps APIs, autoscaler state and a private token; writes leave no temp files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-state-'));
  try {
    const s = new StateStore(dir);
    await s.init();
    const api = { name: 'iris', projectDir: '/p', configFile: 'myelin.yaml', projectId: 'p1', deploymentNonce: 'n', revision: 'r1', replicas: 2, lastUpdated: 5, created: 1 };
    await s.putApi(api);
    await s.putApi({ ...api, name: 'other', replicas: 3 });
    await writeFile(join(dir, 'apis', 'broken.json'), '{not json');
    assert.deepEqual((await s.listApis()).map((a) => [a.name, a.replicas]), [['iris', 2], ['other', 3]]);
    await s.putAutoscalerState('iris', { history: [[1, 2]] });
    assert.deepEqual(await s.getAutoscalerState('iris'), { history: [[1, 2]] });
    await s.deleteApi('iris');
    assert.equal(await s.getAutoscalerState('iris'), undefined);
    assert.deepEqual((await s.listApis()).map((a) => a.name), ['other']);
    const t1 = await s.token();
    assert.equal(await s.token(), t1);
    assert.equal((await stat(s.tokenFile)).mode & 0o777, 0o600);
    const leftovers = (await readdir(join(dir, 'apis'))).filter((n) => n.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
