import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SpecFileStore } from '../../../../adapters/orchestrators/local/spec-file-store.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';

test('SpecFileStore: 0700 folders, 0600 files whatever the umask, safe names, removal', async () => {
  const root = await mkdtemp(join(tmpdir(), 'myelin-spec-store-'));
  const oldMask = process.umask(0o022);
  try {
    const store = new SpecFileStore(join(root, 'run'));
    await store.prepare();
    assert.equal((await stat(store.runDir)).mode & 0o777, 0o700);
    const spec = apiSpecFixture({ name: 'a', predictor: { env: { KEY: 'v' } } });
    const file = await store.write('a/b', 'rev 1', spec);
    assert.equal(file, join(store.runDir, 'a_b', 'rev_1.json'));
    assert.equal((await stat(join(store.runDir, 'a_b'))).mode & 0o777, 0o700);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), JSON.parse(JSON.stringify(spec)));
    assert.deepEqual(await readdir(join(store.runDir, 'a_b')), ['rev_1.json'], 'no temp file left');
    await store.removeFile(file);
    await store.removeFile(file);
    assert.equal(existsSync(file), false);
    await store.removeApi('a/b');
    assert.equal(existsSync(join(store.runDir, 'a_b')), false);
    await store.close();
    assert.equal(existsSync(store.runDir), false);
  } finally {
    process.umask(oldMask);
    await rm(root, { recursive: true, force: true });
  }
});
