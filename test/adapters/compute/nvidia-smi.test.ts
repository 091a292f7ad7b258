import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { MachineComputePlacement } from '../../../adapters/compute/machine-compute-placement.js';
import { OrchestratorError } from '../../../core/errors.js';
import { parseNvidiaSmiGpus, queryNvidiaGpus } from '../../../adapters/compute/nvidia-smi.js';

const parseCases: readonly { name: string; csv: string; want: ReturnType<typeof parseNvidiaSmiGpus> }[] = [
  { name: 'two GPUs', csv: '0, 16160 MiB\n1, 16160 MiB\n', want: [{ index: 0, memBytes: 16160 * 2 ** 20 }, { index: 1, memBytes: 16160 * 2 ** 20 }] },
  { name: 'no output', csv: '', want: [] },
  { name: 'memory not available', csv: '0, [N/A]\n', want: [{ index: 0, memBytes: 0 }] },
  { name: 'a driver warning line is skipped', csv: 'WARNING: infoROM is corrupted\n3, 8 GiB\n', want: [{ index: 3, memBytes: 8 * 2 ** 30 }] },
];
for (const c of parseCases) test(`parseNvidiaSmiGpus: ${c.name}`, () => assert.deepEqual(parseNvidiaSmiGpus(c.csv), c.want));

// nvidia-smi is not installed on this machine: small executables stand in for it, so the real
// execFile path (arguments, timeout, exit status) is exercised.
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-nvsmi-'));
  const script = async (name: string, body: string): Promise<void> => {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  };
  await script('two-gpus', 'test "$1" = "--query-gpu=index,memory.total" && test "$2" = "--format=csv,noheader" || exit 9\nprintf "0, 24576 MiB\\n1, 24576 MiB\\n"');
  await script('fails', 'echo "NVIDIA-SMI has failed" >&2; exit 9');
  await script('hangs', 'exec sleep 30');
});
after(async () => rm(dir, { recursive: true, force: true }));

const queryCases: readonly { name: string; command: () => string; want: readonly number[] }[] = [
  { name: 'lists the GPUs it prints', command: () => join(dir, 'two-gpus'), want: [0, 1] },
  { name: 'absent command → no GPU', command: () => join(dir, 'does-not-exist'), want: [] },
  { name: 'failing command → no GPU', command: () => join(dir, 'fails'), want: [] },
  { name: 'hanging command is killed at the timeout → no GPU', command: () => join(dir, 'hangs'), want: [] },
];
for (const c of queryCases) {
  test(`queryNvidiaGpus: ${c.name}`, async () => {
    const got = await queryNvidiaGpus({ command: c.command(), timeoutMs: 300 });
    assert.deepEqual(got.map((g) => g.index), c.want);
  });
}

test('MachineComputePlacement: detects cores and memory, GPUs from nvidia-smi, keeps given fields', async () => {
  const { availableParallelism, totalmem } = await import('node:os');
  const detected = new MachineComputePlacement({ nvidiaSmi: { command: join(dir, 'two-gpus') } }, pino({ level: 'silent' }));
  await detected.start();
  assert.deepEqual(detected.capacity(), { cpuMillis: availableParallelism() * 1000, memBytes: totalmem(), gpuIndexes: [0, 1], inf: 0 });

  const given = new MachineComputePlacement({ capacity: { cpuMillis: 500, gpuIndexes: [] }, nvidiaSmi: { command: join(dir, 'two-gpus') } }, pino({ level: 'silent' }));
  await given.start();
  assert.deepEqual(given.capacity(), { cpuMillis: 500, memBytes: totalmem(), gpuIndexes: [], inf: 0 });
  assert.deepEqual(given.reserve('r1', { cpuMillis: 400, memBytes: 0, gpu: 0, inf: 0 }), { ok: true, gpuIndexes: [] });
  assert.equal(given.free().cpuMillis, 100);
  given.release('r1');
  assert.equal(given.free().cpuMillis, 500);
});

test('MachineComputePlacement: use before start throws', () => {
  const p = new MachineComputePlacement({}, pino({ level: 'silent' }));
  assert.throws(() => p.capacity(), (err: unknown) => err instanceof OrchestratorError && err.code === 'ENG_COMPUTE_NOT_STARTED' && /before start/.test(err.message));
});
