import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodeEntryReplicaLauncher, listeningAddressOf, metricSampleOf } from '../../../../adapters/orchestrators/local/replica-launcher.js';

const cases: readonly { name: string; msg: unknown; want: ReturnType<typeof listeningAddressOf> }[] = [
  { name: 'port only → loopback', msg: { type: 'myelin.replica.listening', port: 4321 }, want: { host: '127.0.0.1', port: 4321 } },
  { name: 'port and host', msg: { type: 'myelin.replica.listening', port: 80, host: '::1' }, want: { host: '::1', port: 80 } },
  { name: 'unix socket', msg: { type: 'myelin.replica.listening', socketPath: '/tmp/r.sock' }, want: { socketPath: '/tmp/r.sock' } },
  { name: 'port 0 is not an address', msg: { type: 'myelin.replica.listening', port: 0 }, want: null },
  { name: 'port out of range', msg: { type: 'myelin.replica.listening', port: 70000 }, want: null },
  { name: 'port as a string', msg: { type: 'myelin.replica.listening', port: '80' }, want: null },
  { name: 'another message type', msg: { type: 'myelin.metrics', sample: {} }, want: null },
  { name: 'not an object', msg: 'listening', want: null },
  { name: 'null', msg: null, want: null },
];
for (const c of cases) test(`listeningAddressOf: ${c.name}`, () => assert.deepEqual(listeningAddressOf(c.msg), c.want));

test('metricSampleOf picks the sample of a metrics message only', () => {
  assert.deepEqual(metricSampleOf({ type: 'myelin.metrics', sample: { v: 1 } }), { v: 1 });
  assert.equal(metricSampleOf({ type: 'myelin.replica.listening', port: 1 }), null);
  assert.equal(metricSampleOf({ type: 'myelin.metrics' }), null);
});

test('NodeEntryReplicaLauncher runs this node binary; a .ts entry goes through tsx resolved to a file URL', () => {
  const js = new NodeEntryReplicaLauncher({ entry: '/x/replica.mjs', args: ['--flag'] }).launch();
  assert.deepEqual(js, { command: process.execPath, args: ['/x/replica.mjs', '--flag'] });
  const ts = new NodeEntryReplicaLauncher({ entry: '/x/replica.ts' }).launch();
  assert.equal(ts.command, process.execPath);
  assert.equal(ts.args[0], '--import');
  assert.match(ts.args[1], /^file:\/\/.*tsx/);
  assert.equal(ts.args[2], '/x/replica.ts');
});
