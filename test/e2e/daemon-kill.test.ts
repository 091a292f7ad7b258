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
    const deployed = spawnSync(process.execPath, [BIN, 'deploy', EXAMPLE, '--url', url], { encoding: 'utf8', timeout: 120_000 });
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
