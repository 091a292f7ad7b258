/**
 * Helpers for tests of the local orchestrator: a launcher running test/harness/fake-replica.mjs (a
 * real node process), an orchestrator with a small explicit capacity, deadline-bounded waiting,
 * and process/HTTP checks against what the orchestrator spawned.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Subscription } from 'rxjs';
import { MachineComputePlacement } from '../../adapters/compute/machine-compute-placement.js';
import { LocalOrchestrator, type LocalOrchestratorConfig } from '../../adapters/orchestrators/local/local-orchestrator.js';
import { NodeEntryReplicaLauncher } from '../../adapters/orchestrators/local/replica-launcher.js';
import type { ComputeCapacity } from '../../core/ports/compute-placement.js';
import type { ReplicaAddress, ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import { SystemClock } from '../../serving/composition/system-clock.js';

/** Absolute path of the fake replica script. */
export const FAKE_REPLICA = fileURLToPath(new URL('./fake-replica.mjs', import.meta.url));

/** Small capacity for tests: 4 cores, 4 GiB, no GPU. */
export const TEST_CAPACITY: ComputeCapacity = { cpuMillis: 4000, memBytes: 4 * 2 ** 30, gpuIndexes: [], inf: 0 };

/** Fast settings: short backoff, probe every 50 ms, short grace period. */
export const FAST_CONFIG: LocalOrchestratorConfig = {
  backoffBaseMs: 100,
  backoffMaxMs: 1000,
  crashLoopThreshold: 3,
  crashLoopWindowMs: 60_000,
  probeIntervalMs: 50,
  probeTimeoutMs: 1000,
  probeFailureThreshold: 2,
  stopGracePeriodMs: 3000,
};

export interface TestOrchestrator {
  readonly orch: LocalOrchestrator;
  /** Every list replicas$ emitted, in order. */
  readonly lists: (readonly ReplicaInfo[])[];
  /** Every PID the orchestrator reported. */
  readonly pids: Set<number>;
  close(): Promise<void>;
}

/** A started LocalOrchestrator running fake replicas, recording replicas$ and PIDs. */
export async function startTestOrchestrator(
  options: { readonly capacity?: Partial<ComputeCapacity>; readonly config?: LocalOrchestratorConfig } = {},
): Promise<TestOrchestrator> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const placement = new MachineComputePlacement({ capacity: { ...TEST_CAPACITY, ...options.capacity } }, log);
  const runDir = await mkdtemp(join(tmpdir(), 'myelin-orch-test-'));
  const orch = new LocalOrchestrator(
    { ...FAST_CONFIG, runDir, ...options.config },
    new NodeEntryReplicaLauncher({ entry: FAKE_REPLICA }),
    placement,
    new SystemClock(),
    log,
  );
  await orch.start();
  const lists: (readonly ReplicaInfo[])[] = [];
  const pids = new Set<number>();
  const sub: Subscription = orch.replicas$().subscribe((l) => {
    lists.push(l);
    for (const r of l) if (r.pid !== undefined) pids.add(r.pid);
  });
  return {
    orch,
    lists,
    pids,
    async close() {
      await orch.close();
      sub.unsubscribe();
    },
  };
}

/** The latest list replicas$ emitted. */
export function latest(t: TestOrchestrator): readonly ReplicaInfo[] {
  return t.lists[t.lists.length - 1] ?? [];
}

/**
 * Polls `check` every 20 ms until it returns a value other than undefined/false, or fails after
 * `timeoutMs` with `what` and the last value seen.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** True while a process with this PID exists and is not a zombie (reads /proc; sends no signal). */
export function pidAlive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    // Field 3 is the state; Z = zombie (exited, not yet reaped).
    const s = readFileSync(stat, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** One HTTP request to a replica; resolves with status and body text. */
export function replicaRequest(address: ReplicaAddress | undefined, method: string, path: string): Promise<{ status: number; body: string }> {
  if (!address || 'socketPath' in address) return Promise.reject(new Error('replica has no TCP address'));
  return new Promise((resolve, reject) => {
    const req = request({ host: address.host, port: address.port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Replicas of one API in a list, optionally of one state. */
export function ofApi(list: readonly ReplicaInfo[], api: string, state?: ReplicaInfo['state']): ReplicaInfo[] {
  return list.filter((r) => r.api === api && (state === undefined || r.state === state));
}

/**
 * Every replica of `api` seen `crashed` in replicas$, once each, in the order they crashed (what the
 * daemon turns into `replica.crashed` events).
 */
export function crashedReplicas(t: TestOrchestrator, api: string): ReplicaInfo[] {
  const seen = new Map<string, ReplicaInfo>();
  for (const l of t.lists) for (const r of l) if (r.api === api && r.state === 'crashed' && !seen.has(r.id)) seen.set(r.id, r);
  return [...seen.values()];
}

/** The orchestrator's own lines in `api`'s log (`[orchestrator] …`), oldest first. */
export function orchestratorNotes(t: TestOrchestrator, api: string): string[] {
  const lines: string[] = [];
  t.orch.logs$(api, { follow: false }).subscribe((l) => lines.push(l)).unsubscribe();
  return lines.filter((l) => l.startsWith('[orchestrator] '));
}

/** The replacement delays announced by the crash notes of `api` (`replacing it in 100ms` → 100), oldest first. */
export function replacementDelaysMs(t: TestOrchestrator, api: string): number[] {
  return orchestratorNotes(t, api).flatMap((l) => {
    const m = / crashed \(.*\); replacing it in (\d+(?:\.\d+)?)(ms|s)$/.exec(l);
    return m ? [Number(m[1]) * (m[2] === 's' ? 1000 : 1)] : [];
  });
}
