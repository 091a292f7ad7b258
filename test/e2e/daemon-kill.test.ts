// Killing the daemon (kill -9) must not orphan its replicas: each watches its IPC channel and exits
// when the daemon is gone, within a few seconds, even if its drain would hang (issue 11, #2).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { removeDir, waitFor } from './e2e-harness.js';

const BIN = fileURLToPath(new URL('../../bin/myelin.mjs', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/myelin.yaml', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('kill -9 of the daemon: its replica exits by itself', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-daemon-kill-'));
  const daemon = spawn(process.execPath, [BIN, 'up', '--state-dir', join(dir, 'state'), '--port', '0', '--gateway-port', '0', '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  daemon.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  daemon.stderr!.resume();
  let replica: number | undefined;
  try {
    const url = await waitFor('the control API url', 30_000, () => /control api: (http:\/\/\S+)/.exec(out)?.[1]);
    const deployed = spawnSync(process.execPath, [BIN, 'deploy', EXAMPLE, '--url', url, '--state-dir', join(dir, 'state')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(deployed.status, 0, deployed.stderr);
    replica = await waitFor('a replica process', 30_000, () => {
      const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(daemon.pid)], { encoding: 'utf8' });
      const pid = Number(ps.stdout.trim().split(/\s+/)[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    });
    daemon.kill('SIGKILL');
    await waitFor('the orphaned replica to exit', 15_000, () => !alive(replica!));
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    if (replica !== undefined && alive(replica)) process.kill(replica, 'SIGKILL');
    await removeDir(dir);
  }
});

test('myelin up after a kill -9 ends the replica the dead daemon left (one that could not exit by itself) and serves the API again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-daemon-kill-'));
  const state = join(dir, 'state');
  const up = (): { child: ReturnType<typeof spawn>; out: () => string; logs: () => string } => {
    const child = spawn(process.execPath, [BIN, 'up', '--state-dir', state, '--port', '0', '--gateway-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let logs = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (logs += c));
    return { child, out: () => out, logs: () => logs };
  };
  const first = up();
  let second: ReturnType<typeof up> | undefined;
  let replica: number | undefined;
  try {
    const url = await waitFor('the control API url', 30_000, () => /control api: (http:\/\/\S+)/.exec(first.out())?.[1]);
    const deployed = spawnSync(process.execPath, [BIN, 'deploy', EXAMPLE, '--url', url, '--state-dir', state], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(deployed.status, 0, deployed.stderr);
    replica = await waitFor('a replica process', 30_000, () => {
      const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(first.child.pid)], { encoding: 'utf8' });
      const pid = Number(ps.stdout.trim().split(/\s+/)[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    });
    // A stopped replica cannot notice its daemon is gone: it stands for one wedged in native code.
    process.kill(replica, 'SIGSTOP');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    assert.ok(alive(replica), 'the stopped replica outlived its daemon');

    second = up();
    const url2 = await waitFor('the second control API url', 60_000, () => /control api: (http:\/\/\S+)/.exec(second!.out())?.[1]);
    assert.equal(alive(replica), false, 'myelin up ended the leftover before it started serving');
    const cleaned = second.logs().split('\n').find((l) => l.includes('cleaned up what a daemon that did not stop left behind'));
    assert.ok(cleaned, second.logs());
    // The replica, and any process it started (they inherit its spec file in their environment).
    assert.ok((JSON.parse(cleaned) as { killed: number[] }).killed.includes(replica), cleaned);
    // The stored API is restored with fresh replicas and answers.
    const got = await waitFor('the restored API to be live', 60_000, () => {
      const r = spawnSync(process.execPath, [BIN, 'get', '--url', url2, '--state-dir', state, '-o', 'json'], { encoding: 'utf8', timeout: 30_000 });
      const apis = r.status === 0 ? (JSON.parse(r.stdout) as { name: string; status: string }[]) : [];
      return apis.find((a) => a.status === 'live');
    });
    assert.equal(got.name, 'iris-classifier');
  } finally {
    for (const c of [first.child, second?.child]) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    if (second) await new Promise((r) => (second!.child.exitCode !== null || second!.child.signalCode !== null ? r(null) : second!.child.once('exit', r)));
    if (replica !== undefined && alive(replica)) process.kill(replica, 'SIGKILL');
    await removeDir(dir);
  }
});
