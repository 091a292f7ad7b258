import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanLeftovers, findLeftoverProcesses } from '../../../serving/daemon/leftovers.js';

const started: ChildProcess[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A real process that ignores SIGTERM (as a wedged replica would) with the given spec file in its environment. */
function sleeper(specFile: string): ChildProcess {
  const c = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setTimeout(() => {}, 60_000)"], {
    env: { ...process.env, MYELIN_SPEC_FILE: specFile },
    stdio: 'ignore',
  });
  started.push(c);
  return c;
}

function exited(c: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.signalCode ?? c.exitCode);
  return new Promise((resolve) => c.once('exit', (code, sig) => resolve(sig ?? code)));
}

test("a dead daemon's leftovers: its replicas are ended (SIGKILL after the grace), others are left alone, its run folder goes", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-leftovers-'));
  try {
    const runDir = join(dir, 'state', 'run');
    await mkdir(join(runDir, 'iris'), { recursive: true });
    await writeFile(join(runDir, 'iris', 'abc.json'), '{}');
    const ours = sleeper(join(runDir, 'iris', 'abc.json'));
    // Another state folder whose name starts the same: not ours.
    const neighbour = sleeper(join(dir, 'state', 'run2', 'iris', 'abc.json'));
    const elsewhere = sleeper(join(dir, 'other', 'run', 'x.json'));
    await new Promise((r) => setTimeout(r, 300)); // let them exec and set their handlers

    const found = await findLeftoverProcesses(runDir);
    assert.deepEqual(found, [ours.pid]);

    const report = await cleanLeftovers({ runDir, graceMs: 300 });
    assert.deepEqual(report.killed, [ours.pid]);
    assert.deepEqual(report.removed, [runDir]);
    assert.equal(await exited(ours), 'SIGKILL', 'it ignored SIGTERM, so SIGKILL ended it');
    assert.equal(neighbour.exitCode ?? neighbour.signalCode, null, 'a neighbour folder is not ours');
    assert.equal(elsewhere.exitCode ?? elsewhere.signalCode, null);
    assert.equal(existsSync(runDir), false);
    assert.equal(existsSync(join(dir, 'state')), true, 'only the run folder is removed');

    const again = await cleanLeftovers({ runDir, graceMs: 300 });
    assert.deepEqual(again, { killed: [], removed: [] }, 'nothing left the second time');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("an older version's /tmp/myelin-local-<pid> of the dead daemon is removed too", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-leftovers-'));
  // A pid no process has now: the highest pid numbers are rarely in use; pick one that is not alive.
  let dead = 4_000_000;
  for (;;) {
    try {
      process.kill(dead, 0);
      dead -= 1;
    } catch {
      break;
    }
  }
  const old = join(tmpdir(), `myelin-local-${dead}`);
  try {
    await mkdir(join(old, 'iris'), { recursive: true });
    const report = await cleanLeftovers({ runDir: join(dir, 'run'), deadDaemonPid: dead });
    assert.deepEqual(report, { killed: [], removed: [old] });
    assert.equal(existsSync(old), false);
  } finally {
    await rm(old, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
