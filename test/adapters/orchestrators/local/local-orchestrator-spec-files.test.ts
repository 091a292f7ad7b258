// Spec files hold predictor.env values (secrets): the run folder is 0700 and each spec file 0600,
// whatever the umask (issue 11, #7).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { latest, ofApi, startTestOrchestrator, waitFor } from '../../../harness/local-orchestrator-harness.js';

test('the run folder is 0700 and a spec file holding env is 0600', async () => {
  const runDir = join(await mkdtemp(join(tmpdir(), 'myelin-spec-mode-')), 'run');
  const oldMask = process.umask(0o022);
  const t = await startTestOrchestrator({ config: { runDir } });
  try {
    await t.orch.apply({ spec: apiSpecFixture({ name: 'secret', predictor: { env: { API_KEY: 's3cr3t' } } }), revision: 'sec0000000', replicas: 1 });
    await waitFor('1 ready', () => ofApi(latest(t), 'secret', 'ready').length === 1);
    assert.equal((await stat(runDir)).mode & 0o777, 0o700);
    const apiDir = join(runDir, 'secret');
    assert.equal((await stat(apiDir)).mode & 0o777, 0o700);
    const files = (await readdir(apiDir)).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    assert.equal((await stat(join(apiDir, files[0]))).mode & 0o777, 0o600);
  } finally {
    process.umask(oldMask);
    await t.close();
    await rm(join(runDir, '..'), { recursive: true, force: true });
  }
});
