/**
 * The OrchestratorTarget contract (test/contracts/orchestrator-target.contract.ts) for the `local`
 * target: real child processes running test/harness/fake-replica.mjs on 127.0.0.1, with short
 * probe, backoff and grace periods. Built only through the adapter's module (its public entry point).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Container } from 'inversify';
import { pino } from 'pino';
import { MachineComputePlacement } from '../../../../adapters/compute/machine-compute-placement.js';
import {
  LocalOrchestratorConfig,
  NodeEntryReplicaLauncher,
  ReplicaLauncher,
  localOrchestratorModule,
} from '../../../../adapters/orchestrators/local/local-orchestrator-module.js';
import { Clock } from '../../../../core/clock.js';
import { ComputePlacement } from '../../../../core/ports/compute-placement.js';
import { Logger } from '../../../../core/ports/logger.js';
import { OrchestratorTarget } from '../../../../core/ports/orchestrator-target.js';
import { SystemClock } from '../../../../serving/composition/system-clock.js';
import { describeOrchestratorTargetContract } from '../../../contracts/orchestrator-target.contract.js';

const FAKE_REPLICA = fileURLToPath(new URL('../../../harness/fake-replica.mjs', import.meta.url));

/** True while a process with this PID exists and is not a zombie (reads /proc; sends no signal). */
function pidAlive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describeOrchestratorTargetContract('local', async () => {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const runDir = await mkdtemp(join(tmpdir(), 'myelin-orch-contract-'));
  const container = new Container();
  container.bind(Logger).toConstantValue(log);
  container.bind(Clock).toConstantValue(new SystemClock());
  // 4 cores, 4 GiB, no GPU, whatever this machine has: the contract's replicas ask for 0.2 core each.
  container.bind(ComputePlacement).toConstantValue(new MachineComputePlacement({ capacity: { cpuMillis: 4000, memBytes: 4 * 2 ** 30, gpuIndexes: [], inf: 0 } }, log));
  container.bind(ReplicaLauncher).toConstantValue(new NodeEntryReplicaLauncher({ entry: FAKE_REPLICA }));
  container.bind<LocalOrchestratorConfig>(LocalOrchestratorConfig).toConstantValue({
    runDir,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    probeIntervalMs: 50,
    probeTimeoutMs: 1000,
    probeFailureThreshold: 2,
    stopGracePeriodMs: 3000,
  });
  container.load(localOrchestratorModule);
  const target = container.get<OrchestratorTarget>(OrchestratorTarget);
  await target.start();

  // Every process the target reported, so that the checks (and the crash) touch only PIDs it started.
  const pids = new Map<number, { readonly api: string; readonly id: string }>();
  const sub = target.replicas$().subscribe((l) => {
    for (const r of l) if (r.pid !== undefined) pids.set(r.pid, { api: r.api, id: r.id });
  });
  const running = async (api?: string): Promise<string[]> =>
    [...pids].filter(([pid, r]) => (api === undefined || r.api === api) && pidAlive(pid)).map(([pid, r]) => `replica ${r.id} pid ${pid}`);
  return {
    target,
    running,
    async leftovers(api) {
      // The spec files handed to the API's replicas (the whole run folder's content for every API).
      const dir = api === undefined ? runDir : join(runDir, api);
      const files = existsSync(dir) ? readdirSync(dir, { recursive: true }).map((f) => `spec file ${join(dir, String(f))}`) : [];
      return [...(await running(api)), ...files];
    },
    async crash(replica) {
      const entry = replica.pid !== undefined ? pids.get(replica.pid) : undefined;
      if (!entry || entry.id !== replica.id) throw new Error(`${replica.id} is not a process this target reported`);
      process.kill(replica.pid!, 'SIGKILL');
      return { exitCode: null, signal: 'SIGKILL' };
    },
    // The local target replaces a crashed replica itself, after its backoff.
    restartCrashed: async () => undefined,
    async [Symbol.asyncDispose]() {
      await target.close();
      sub.unsubscribe();
      await rm(runDir, { recursive: true, force: true });
    },
  };
});
