import { availableParallelism, totalmem } from 'node:os';
import type { ComputeCapacity } from '../../core/ports/compute-placement.js';
import { queryNvidiaGpus, type NvidiaSmiOptions } from './nvidia-smi.js';

/**
 * This machine's capacity: every core the process may use (`os.availableParallelism()`, as
 * millicores), all physical memory (`os.totalmem()`), and the GPUs nvidia-smi lists (none when it is
 * absent, fails or times out). Inferentia chips are not detected: 0.
 */
export async function detectMachineCapacity(nvidia: NvidiaSmiOptions = {}): Promise<ComputeCapacity> {
  const gpus = await queryNvidiaGpus(nvidia);
  return {
    cpuMillis: availableParallelism() * 1000,
    memBytes: totalmem(),
    gpuIndexes: gpus.map((g) => g.index),
    inf: 0,
  };
}
