import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { test } from 'node:test';
import { NatsServer } from '../../../harness/nats-server.js';

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('the harness starts a server on a random loopback port, stops it and restarts it on the same port', async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const port = server.port;
  assert.ok(port > 0);
  assert.equal(server.url, `nats://127.0.0.1:${port}`);
  assert.equal(await reachable(port), true);
  const firstPid = server.pid;
  await server.stop();
  assert.equal(server.running, false);
  assert.equal(await reachable(port), false);
  await server.restart();
  assert.equal(server.port, port);
  assert.notEqual(server.pid, firstPid);
  assert.equal(await reachable(port), true);
});

test('the harness reports a server that exits at once, with its stderr', async () => {
  await assert.rejects(NatsServer.start({ extraArgs: ['--no-such-flag'] }), /exited early/);
});

test('disposal stops the server and removes its directory', async () => {
  let port = 0;
  let dir = '';
  {
    await using server = await NatsServer.start({ jetstream: true });
    port = server.port;
    dir = server.directory;
    assert.equal(existsSync(dir), true);
  }
  assert.equal(await reachable(port), false);
  assert.equal(existsSync(dir), false);
});
