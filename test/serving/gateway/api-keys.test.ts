// Prediction API keys (issue 14, part 4): the gateway's check (both header forms, constant-time
// digests), where the daemon reads a secret (file over environment), and a real daemon with a real
// replica answering 401 without the key, with a wrong one, and 200 with the right one in either header;
// a deploy whose secret is not set is refused naming it; the key never reaches the daemon's log.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../../core/errors.js';
import { ApiKeySecretError, resolveApiKeySecret } from '../../../serving/daemon/api-key-secrets.js';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { ApiKeyCheck } from '../../../serving/gateway/api-keys.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import { TestReplica, gatewaySpec, replicaInfo } from '../../harness/gateway-replicas.js';
import { removeDir, waitFor } from '../../e2e/e2e-harness.js';
import { startInProcessDaemon, type InProcessDaemon } from '../../e2e/in-process-daemon.js';

describe('ApiKeyCheck', () => {
  const check = new ApiKeyCheck(['k-one', 'k-two']);
  const cases: { name: string; headers: string[]; want: 'ok' | 'missing' | 'wrong' }[] = [
    { name: 'no header', headers: ['Host', 'x'], want: 'missing' },
    { name: 'bearer, first key', headers: ['Authorization', 'Bearer k-one'], want: 'ok' },
    { name: 'bearer, second key (rotation)', headers: ['authorization', 'Bearer k-two'], want: 'ok' },
    { name: 'bearer scheme in lower case', headers: ['AUTHORIZATION', 'bearer k-one'], want: 'ok' },
    { name: 'x-api-key', headers: ['X-API-Key', 'k-two'], want: 'ok' },
    { name: 'x-api-key, any case', headers: ['x-api-key', 'k-one'], want: 'ok' },
    { name: 'wrong bearer', headers: ['Authorization', 'Bearer k-three'], want: 'wrong' },
    { name: 'prefix of a key', headers: ['Authorization', 'Bearer k-on'], want: 'wrong' },
    { name: 'key with a suffix', headers: ['X-API-Key', 'k-one1'], want: 'wrong' },
    { name: 'basic auth is not a key', headers: ['Authorization', 'Basic k-one'], want: 'missing' },
    { name: 'empty x-api-key', headers: ['X-API-Key', ''], want: 'missing' },
    { name: 'a wrong header and a right one', headers: ['X-API-Key', 'nope', 'Authorization', 'Bearer k-one'], want: 'ok' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = check.check(c.headers);
      assert.equal(got, c.want, `want ${c.want}, got ${got}`);
    });
  }
  test('refuses an empty key list or an empty key', () => {
    assert.throws(() => new ApiKeyCheck([]), RangeError);
    assert.throws(() => new ApiKeyCheck(['']), RangeError);
  });
});

describe('the gateway with a real replica', () => {
  test('the key the gateway checked never reaches the replica; an open API passes authorization through', async () => {
    await using replica = await TestReplica.start('keyed-0');
    await using open = await TestReplica.start('open-0');
    const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([replicaInfo('keyed', 'keyed-0', replica.port), replicaInfo('open', 'open-0', open.port)]);
    const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 1000 }, pino({ level: 'silent' }));
    await gw.start();
    try {
      await gw.upsertApi(gatewaySpec('keyed'), { apiKeys: ['s3cret'] });
      await gw.upsertApi(gatewaySpec('open'));
      const base = `http://127.0.0.1:${gw.sharedPort()}`;
      const sends: Record<string, string>[] = [{ authorization: 'Bearer s3cret' }, { 'x-api-key': 's3cret', authorization: 'Basic dTpw' }];
      for (const headers of sends) {
        const r = await fetch(`${base}/keyed`, { method: 'POST', headers: { ...headers, 'x-trace': 't' }, body: 'x' });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
      }
      assert.equal(replica.seen.length, 2);
      for (const seen of replica.seen) {
        assert.equal(seen.headers.authorization, undefined, 'no authorization header at the replica');
        assert.equal(seen.headers['x-api-key'], undefined, 'no x-api-key header at the replica');
        assert.equal(seen.headers['x-trace'], 't', 'other headers pass');
      }
      const r = await fetch(`${base}/open`, { method: 'POST', headers: { authorization: 'Bearer app-token' }, body: 'x' });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      assert.equal(open.seen[0].headers.authorization, 'Bearer app-token', 'an API without keys leaves authorization to its predictor');
    } finally {
      await gw.close();
    }
  });
});

describe('resolveApiKeySecret', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-secrets-'));
    await writeFile(join(dir, 'BOTH'), 'from-file\n\n  second-key  \n');
    await writeFile(join(dir, 'EMPTY'), '\n \n');
    await writeFile(join(dir, 'SPACED'), 'two words\n');
  });
  after(() => removeDir(dir));
  const env = { BOTH: 'from-env', ONLY_ENV: ' env-key ', SPACED_ENV: 'a b' };

  test('the file in the state folder wins over the environment; one key per line', async () => {
    assert.deepEqual(await resolveApiKeySecret('BOTH', dir, env), { keys: ['from-file', 'second-key'], source: 'file' });
  });
  test('the environment when there is no file', async () => {
    assert.deepEqual(await resolveApiKeySecret('ONLY_ENV', dir, env), { keys: ['env-key'], source: 'env' });
  });
  const refused: { name: string; secret: string; want: RegExp }[] = [
    { name: 'not set anywhere', secret: 'NOWHERE', want: /^secret NOWHERE is not set: .*NOWHERE.* environment variable NOWHERE/ },
    { name: 'an empty file', secret: 'EMPTY', want: /^secret EMPTY is empty/ },
    { name: 'a key with a space (file)', secret: 'SPACED', want: /whitespace/ },
    { name: 'a key with a space (environment)', secret: 'SPACED_ENV', want: /whitespace/ },
  ];
  for (const c of refused) {
    test(`refused: ${c.name}`, async () => {
      await assert.rejects(resolveApiKeySecret(c.secret, dir, env), (err: unknown) => {
        assert.ok(err instanceof ApiKeySecretError, String(err));
        assert.match(err.message, c.want);
        assert.equal(err.secret, c.secret);
        return true;
      });
    });
  }
});

describe('api keys on a real daemon', () => {
  const SECRET = `LOCKED_KEY_${process.pid}`;
  const KEY = `k3y-${Math.random().toString(36).slice(2)}-${'z'.repeat(12)}`;
  const SPLIT_SECRET = `SPLIT_KEY_${process.pid}`;
  const SPLIT_KEY = `spl1t-${Math.random().toString(36).slice(2)}`;
  let d: InProcessDaemon;
  let url: string;

  const yaml = (secret: string): string => `- name: locked
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      version: locked
  compute:
    cpu: 100m
  networking:
    api_keys:
      secret: ${secret}
`;

  before(async () => {
    process.env[SECRET] = KEY;
    d = await startInProcessDaemon();
    await d.deploy(yaml(SECRET));
    await waitFor('locked live', 60_000, async () => {
      const a = await d.running.daemon.get('locked');
      return a.status === 'live' && a.upToDate >= 1;
    });
    url = await d.url('locked');
  });
  after(async () => {
    delete process.env[SECRET];
    delete process.env[SPLIT_SECRET];
    await d?.close();
    if (d) await removeDir(d.dir);
  });

  const post = (headers: Record<string, string>) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"x":1}' });

  test('no key: 401 with www-authenticate, for POST and GET', async () => {
    const r = await post({});
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="locked"/);
    const body = (await r.json()) as { error: string };
    assert.match(body.error, /locked requires an API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"/);
    const g = await fetch(url);
    assert.equal(g.status, 401, 'GET (the summary) needs the key too');
    await g.arrayBuffer();
  });

  test('wrong key: 401, in either header, and the answer does not echo it', async () => {
    for (const headers of [{ authorization: 'Bearer not-the-key' }, { 'x-api-key': 'not-the-key' }, { 'x-api-key': `${KEY}x` }] as Record<string, string>[]) {
      const r = await post(headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      const text = await r.text();
      assert.match(text, /wrong API key for locked/);
      assert.doesNotMatch(text, /not-the-key/);
    }
  });

  test('right key: 200 as Authorization: Bearer and as X-API-Key', async () => {
    for (const headers of [{ authorization: `Bearer ${KEY}` }, { 'x-api-key': KEY }] as Record<string, string>[]) {
      const r = await post(headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.equal(((await r.json()) as { version: string }).version, 'locked');
    }
  });

  test('a secret that is not set refuses the deploy, naming the secret at its line', async () => {
    const missing = `NOT_SET_${process.pid}`;
    await assert.rejects(d.deploy(yaml(missing).replace('name: locked', 'name: locked-two')), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      const p = err.problems.find((x) => x.field === 'networking.api_keys.secret');
      assert.ok(p, JSON.stringify(err.problems));
      assert.equal(p.api, 'locked-two');
      assert.equal(p.line, 12, 'the line of `secret:`');
      assert.match(p.message, new RegExp(`secret ${missing} is not set`));
      return true;
    });
    await assert.rejects(d.running.daemon.get('locked-two'), /not deployed/);
  });

  test('the secrets file in the state folder wins over the environment (read at deploy)', async () => {
    await mkdir(join(d.stateDir, 'secrets'), { recursive: true });
    await writeFile(join(d.stateDir, 'secrets', SECRET), 'file-key-1\nfile-key-2\n', { mode: 0o600 });
    // A changed config (a new version) routes the API again, which reads the secret again.
    await d.deploy(yaml(SECRET).replace('version: locked', 'version: locked-2'));
    const envKey = await post({ authorization: `Bearer ${KEY}` });
    assert.equal(envKey.status, 401, 'the environment key no longer opens it');
    await envKey.arrayBuffer();
    for (const k of ['file-key-1', 'file-key-2']) {
      const r = await post({ 'x-api-key': k });
      assert.equal(r.status, 200, k);
      await r.arrayBuffer();
    }
  });

  test('a TrafficSplitter over a keyed API needs keys of its own; its keys (not the backend\'s) open its endpoint', async () => {
    const splitYaml = (keys: string): string => `- name: locked-split
  kind: TrafficSplitter
  apis:
    - name: locked
      weight: 100
${keys}`;
    await assert.rejects(d.deploy(splitYaml('')), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.deepEqual(
        err.problems.map((p) => [p.line, p.field]),
        [[4, 'apis[0].name']],
      );
      assert.match(err.problems[0].message, /locked requires an API key \(networking.api_keys\); give this TrafficSplitter networking.api_keys too/);
      return true;
    });
    process.env[SPLIT_SECRET] = SPLIT_KEY;
    await d.deploy(splitYaml(`  networking:\n    api_keys:\n      secret: ${SPLIT_SECRET}\n`));
    const splitUrl = url.replace(/\/locked$/, '/locked-split');
    const send = (headers: Record<string, string>) => fetch(splitUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    const none = await send({});
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /realm="locked-split"/);
    await none.arrayBuffer();
    const backendKey = await send({ 'x-api-key': 'file-key-1' });
    assert.equal(backendKey.status, 401, "the backend's key does not open the splitter");
    await backendKey.arrayBuffer();
    const ok = await send({ authorization: `Bearer ${SPLIT_KEY}` });
    assert.equal(ok.status, 200, 'the splitter key reaches the keyed backend without its key');
    assert.match(((await ok.json()) as { version: string }).version, /^locked/);
    const view = await d.running.daemon.getSplitter('locked-split');
    assert.equal(view?.apiKeysSecret, SPLIT_SECRET);
    assert.equal(view?.unauthorized, 2);
    assert.equal(JSON.stringify(view).includes(SPLIT_KEY), false, 'the view has the secret name only');
  });

  test('no key is ever written to the daemon log', async () => {
    const log = await readFile(d.logFile, 'utf8');
    assert.match(log, /api keys loaded/, 'the log is the daemon log (it names the secret)');
    assert.match(log, new RegExp(SECRET));
    for (const k of [KEY, SPLIT_KEY, 'file-key-1', 'file-key-2', 'not-the-key']) assert.equal(log.includes(k), false, `${k} in the log`);
  });
});
