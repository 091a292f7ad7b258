import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ComputeLedger } from '../../../adapters/compute/compute-ledger.js';
import { computeRequestOf, formatBytes, formatCores } from '../../../adapters/compute/compute-quantities.js';
import { OrchestratorError } from '../../../core/errors.js';
import type { ComputeCapacity, ComputeRequest } from '../../../core/ports/compute-placement.js';

const GI = 2 ** 30;
const cap: ComputeCapacity = { cpuMillis: 2000, memBytes: 4 * GI, gpuIndexes: [0, 1], inf: 0 };
const req = (r: Partial<ComputeRequest>): ComputeRequest => ({ cpuMillis: 0, memBytes: 0, gpu: 0, inf: 0, ...r });

type Step =
  | { readonly reserve: string; readonly request: Partial<ComputeRequest>; readonly wantGpus?: readonly number[]; readonly wantReason?: string; readonly wantNeverFits?: boolean }
  | { readonly release: string };

const cases: readonly { name: string; steps: readonly Step[]; wantFree: ComputeCapacity }[] = [
  {
    name: 'cpu fills up, then a release makes room',
    steps: [
      { reserve: 'a', request: { cpuMillis: 1500 }, wantGpus: [] },
      { reserve: 'b', request: { cpuMillis: 1000 }, wantReason: 'compute unavailable: requested 1 cpu, 0.5 free of 2', wantNeverFits: false },
      { release: 'a' },
      { reserve: 'b', request: { cpuMillis: 1000 }, wantGpus: [] },
    ],
    wantFree: { cpuMillis: 1000, memBytes: 4 * GI, gpuIndexes: [0, 1], inf: 0 },
  },
  {
    name: 'GPUs are whole devices, lowest free index first, never shared',
    steps: [
      { reserve: 'a', request: { gpu: 1 }, wantGpus: [0] },
      { reserve: 'b', request: { gpu: 1 }, wantGpus: [1] },
      { reserve: 'c', request: { gpu: 1 }, wantReason: 'compute unavailable: requested 1 gpu, 0 free of 2', wantNeverFits: false },
      { release: 'a' },
      { reserve: 'c', request: { gpu: 1 }, wantGpus: [0] },
    ],
    wantFree: { cpuMillis: 2000, memBytes: 4 * GI, gpuIndexes: [], inf: 0 },
  },
  {
    name: 'a request larger than the machine never fits and names every short resource',
    steps: [
      {
        reserve: 'a',
        request: { cpuMillis: 4000, memBytes: 5 * GI, gpu: 3, inf: 1 },
        wantReason: 'compute unavailable: requested 4 cpu, 2 free of 2; requested 5Gi mem, 4Gi free of 4Gi; requested 3 gpu, 2 free of 2; requested 1 inf, 0 free of 0',
        wantNeverFits: true,
      },
    ],
    wantFree: cap,
  },
  {
    name: 'memory is accounted when requested',
    steps: [
      { reserve: 'a', request: { memBytes: 3 * GI }, wantGpus: [] },
      { reserve: 'b', request: { memBytes: 1.5 * GI }, wantReason: 'compute unavailable: requested 1.5Gi mem, 1Gi free of 4Gi', wantNeverFits: false },
    ],
    wantFree: { cpuMillis: 2000, memBytes: 1 * GI, gpuIndexes: [0, 1], inf: 0 },
  },
  {
    name: 'releasing an owner that holds nothing is a no-op',
    steps: [{ release: 'nobody' }],
    wantFree: cap,
  },
];

for (const c of cases) {
  test(`ComputeLedger: ${c.name}`, () => {
    const ledger = new ComputeLedger(cap);
    for (const s of c.steps) {
      if ('release' in s) {
        ledger.release(s.release);
        continue;
      }
      const got = ledger.reserve(s.reserve, req(s.request));
      if (s.wantReason !== undefined) {
        assert.deepEqual(got, { ok: false, reason: s.wantReason, neverFits: s.wantNeverFits }, `reserve ${s.reserve}`);
      } else {
        assert.deepEqual(got, { ok: true, gpuIndexes: s.wantGpus }, `reserve ${s.reserve}`);
      }
    }
    assert.deepEqual(ledger.free(), c.wantFree);
  });
}

test('ComputeLedger: reserving twice for one owner throws', () => {
  const ledger = new ComputeLedger(cap);
  ledger.reserve('a', req({ cpuMillis: 100 }));
  assert.throws(
    () => ledger.reserve('a', req({ cpuMillis: 100 })),
    (err: unknown) => err instanceof OrchestratorError && err.code === 'ENG_COMPUTE_RESERVED' && /already reserved for a/.test(err.message),
  );
});

test('ComputeLedger: rejects a negative capacity and duplicate GPU indexes', () => {
  assert.throws(() => new ComputeLedger({ ...cap, cpuMillis: -1 }), RangeError);
  assert.throws(() => new ComputeLedger({ ...cap, gpuIndexes: [0, 0] }), RangeError);
});

const formats: readonly { name: string; got: string; want: string }[] = [
  { name: 'cores 200m', got: formatCores(200), want: '0.2' },
  { name: 'cores 1800m', got: formatCores(1800), want: '1.8' },
  { name: 'cores 2000m', got: formatCores(2000), want: '2' },
  { name: 'cores 1234m', got: formatCores(1234), want: '1.23' },
  { name: 'bytes 512Mi', got: formatBytes(512 * 2 ** 20), want: '512Mi' },
  { name: 'bytes 1.5Gi', got: formatBytes(1.5 * GI), want: '1.5Gi' },
  { name: 'bytes 1000', got: formatBytes(1000), want: '1000' },
];
for (const f of formats) test(`format ${f.name}`, () => assert.equal(f.got, f.want));

test('computeRequestOf: memory not requested reserves 0 bytes', () => {
  assert.deepEqual(computeRequestOf({ cpuMillis: 200, memBytes: null, gpu: 1, inf: 0 }), { cpuMillis: 200, memBytes: 0, gpu: 1, inf: 0 });
});
