/**
 * Issue 11, defect 9, end to end: while a restarted daemon restores its stored APIs, the gateway never
 * answers 404 for a known API (503 `myelin is starting; retry` until its route is back). A real daemon
 * (runDaemon, in this process) with real replica processes, on a fixed gateway port on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { packProject } from '../../../serving/daemon/project-bundle.js';
import { runDaemon, type RunningDaemon } from '../../../serving/daemon/run-daemon.js';
import { removeDir, waitFor, writeSlowProject } from '../../e2e/e2e-harness.js';
import { freePort, httpRequest } from '../../harness/gateway-replicas.js';

const YAML = `- name: iris
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 1
    max_replicas: 1
`;

let dir: string | undefined;
let running: RunningDaemon | undefined;
after(async () => {
  await running?.stop();
  if (dir !== undefined) await removeDir(dir);
});

function start(stateDir: string, gatewayPort: number, logName: string): Promise<RunningDaemon> {
  return runDaemon({
    stateDir,
    target: 'local',
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort,
    log: pino({ level: 'info' }, pino.destination({ dest: join(dir as string, logName), sync: true })),
    local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 10_000, probeIntervalMs: 100 },
  });
}

test('during a daemon restart a known api is 503 (never 404) until its route is restored', async (t) => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-gw-restart-'));
  const stateDir = join(dir, 'state');
  const project = join(dir, 'project');
  await mkdir(project, { recursive: true });
  await writeSlowProject(project, YAML);
  const gatewayPort = await freePort();

  running = await start(stateDir, gatewayPort, 'daemon-1.log');
  await running.daemon.deploy(await packProject(project, 'myelin.yaml'), { force: true });
  await waitFor('iris serving', 60_000, async () => (await httpRequest(gatewayPort, { method: 'POST', path: '/iris', body: '{}' })).status === 200);
  await running.stop();
  running = undefined;

  // Probe the api without pause from before the new daemon opens its port until it serves again.
  const statuses = new Map<string, number>();
  let probing = true;
  let served = false;
  const prober = (async () => {
    while (probing) {
      let key: string;
      try {
        const got = await httpRequest(gatewayPort, { method: 'POST', path: '/iris', body: '{}' });
        key = `${got.status} ${got.status === 200 ? '' : got.body.toString()}`.trim();
        if (got.status === 200) served = true;
      } catch (err) {
        key = `connection ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
        await new Promise((r) => setTimeout(r, 2));
      }
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
  })();
  running = await start(stateDir, gatewayPort, 'daemon-2.log');
  await waitFor('iris serving again', 60_000, () => served);
  probing = false;
  await prober;

  const seen = JSON.stringify([...statuses]);
  t.diagnostic(`answers during the restart: ${seen}`);
  assert.ok(![...statuses.keys()].some((k) => k.startsWith('404')), `a 404 during the restart: ${seen}`);
  for (const k of statuses.keys()) {
    assert.ok(
      k === '200' || k.startsWith('connection ') || k.startsWith('503 '),
      `unexpected answer during the restart: ${k} (all: ${seen})`,
    );
  }
});
