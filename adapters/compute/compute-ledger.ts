import { OrchestratorError } from '../../core/errors.js';
import type { ComputeCapacity, ComputeRequest, PlacementResult } from '../../core/ports/compute-placement.js';
import { formatBytes, formatCores } from './compute-quantities.js';

interface Held {
  readonly request: ComputeRequest;
  readonly gpuIndexes: readonly number[];
}

/**
 * Fit accounting against one machine (Kubernetes-style: requests are reserved, actual usage is not
 * measured). A replica fits when its cpu, memory, GPUs and Inferentia chips are each at most what is
 * free; GPUs are whole devices handed out lowest index first, so two replicas never share one.
 * Pure bookkeeping: no I/O, no clock.
 *
 * Example: capacity 2000m / 4Gi / GPUs [0, 1]; reserving 1500m + 1 GPU gets GPU 0; a second
 * 1000m request is refused (`requested 1 cpu, 0.5 free of 2`) until the first is released.
 */
export class ComputeLedger {
  private readonly held = new Map<string, Held>();

  constructor(private readonly total: ComputeCapacity) {
    for (const [k, v] of [
      ['cpuMillis', total.cpuMillis],
      ['memBytes', total.memBytes],
      ['inf', total.inf],
    ] as const) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`compute capacity ${k} must be a number >= 0 (got ${v})`);
    }
    if (new Set(total.gpuIndexes).size !== total.gpuIndexes.length) {
      throw new RangeError(`compute capacity lists a GPU index twice (${total.gpuIndexes.join(', ')})`);
    }
  }

  capacity(): ComputeCapacity {
    return this.total;
  }

  free(): ComputeCapacity {
    let cpuMillis = this.total.cpuMillis;
    let memBytes = this.total.memBytes;
    let inf = this.total.inf;
    const used = new Set<number>();
    for (const h of this.held.values()) {
      cpuMillis -= h.request.cpuMillis;
      memBytes -= h.request.memBytes;
      inf -= h.request.inf;
      for (const g of h.gpuIndexes) used.add(g);
    }
    return { cpuMillis, memBytes, inf, gpuIndexes: this.total.gpuIndexes.filter((g) => !used.has(g)) };
  }

  /** Owners holding a reservation, in reservation order. */
  owners(): string[] {
    return [...this.held.keys()];
  }

  reserve(owner: string, request: ComputeRequest): PlacementResult {
    if (this.held.has(owner)) throw new OrchestratorError(`compute already reserved for ${owner}`, { code: 'ENG_COMPUTE_RESERVED' });
    const free = this.free();
    const short: string[] = [];
    let neverFits = false;
    const check = (wanted: number, left: number, all: number, unit: string, fmt: (n: number) => string): void => {
      if (wanted <= left) return;
      short.push(`requested ${fmt(wanted)} ${unit}, ${fmt(Math.max(0, left))} free of ${fmt(all)}`);
      if (wanted > all) neverFits = true;
    };
    check(request.cpuMillis, free.cpuMillis, this.total.cpuMillis, 'cpu', formatCores);
    check(request.memBytes, free.memBytes, this.total.memBytes, 'mem', formatBytes);
    check(request.gpu, free.gpuIndexes.length, this.total.gpuIndexes.length, 'gpu', String);
    check(request.inf, free.inf, this.total.inf, 'inf', String);
    if (short.length > 0) return { ok: false, reason: `compute unavailable: ${short.join('; ')}`, neverFits };
    const gpuIndexes = [...free.gpuIndexes].sort((a, b) => a - b).slice(0, request.gpu);
    this.held.set(owner, { request, gpuIndexes });
    return { ok: true, gpuIndexes };
  }

  release(owner: string): void {
    this.held.delete(owner);
  }
}

/**
 * What in `request` no amount of waiting can give on a machine of `total` capacity (Cortex's deploy
 * check, `no instances can satisfy the requested gpu quantity …`), one entry per field; empty when
 * the request fits an idle machine.
 */
export function neverFittingCompute(request: ComputeRequest, total: ComputeCapacity): Array<{ readonly field: 'cpu' | 'mem' | 'gpu' | 'inf'; readonly message: string }> {
  const out: Array<{ readonly field: 'cpu' | 'mem' | 'gpu' | 'inf'; readonly message: string }> = [];
  const check = (field: 'cpu' | 'mem' | 'gpu' | 'inf', wanted: number, all: number, fmt: (n: number) => string): void => {
    if (wanted > all) out.push({ field, message: `no instance can satisfy the requested ${field} quantity - requested ${fmt(wanted)} ${field} but this machine only has ${fmt(all)} ${field}` });
  };
  check('cpu', request.cpuMillis, total.cpuMillis, formatCores);
  check('mem', request.memBytes, total.memBytes, formatBytes);
  check('gpu', request.gpu, total.gpuIndexes.length, String);
  check('inf', request.inf, total.inf, String);
  return out;
}
