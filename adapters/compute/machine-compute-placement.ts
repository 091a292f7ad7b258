import type { Logger } from 'pino';
import { OrchestratorError } from '../../core/errors.js';
import type { ComputeCapacity, ComputePlacement, ComputeRequest, PlacementResult } from '../../core/ports/compute-placement.js';
import { ComputeLedger, neverFittingCompute } from './compute-ledger.js';
import { formatBytes, formatCores } from './compute-quantities.js';
import { detectMachineCapacity } from './machine-capacity.js';
import type { NvidiaSmiOptions } from './nvidia-smi.js';

/** Settings of the machine's compute accounting; every field is optional. */
export interface ComputeCapacityConfig {
  /**
   * Use this capacity instead of detecting it (tests pass a small one; an operator can keep some of
   * the machine for other work). Fields left out are detected.
   */
  readonly capacity?: Partial<ComputeCapacity>;
  /** How nvidia-smi is run while detecting GPUs. */
  readonly nvidiaSmi?: NvidiaSmiOptions;
}

/**
 * `ComputePlacement` for the machine the daemon runs on: capacity detected at `start()` (or given),
 * reservations kept by a `ComputeLedger`.
 */
export class MachineComputePlacement implements ComputePlacement {
  private ledger: ComputeLedger | null = null;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly config: ComputeCapacityConfig,
    private readonly log: Logger,
  ) {}

  /** Detects the capacity once; later calls return the same promise. */
  start(): Promise<void> {
    this.starting ??= this.detect();
    return this.starting;
  }

  private async detect(): Promise<void> {
    const given = this.config.capacity ?? {};
    const complete = given.cpuMillis !== undefined && given.memBytes !== undefined && given.gpuIndexes !== undefined;
    const detected = complete ? null : await detectMachineCapacity(this.config.nvidiaSmi);
    const capacity: ComputeCapacity = {
      cpuMillis: given.cpuMillis ?? detected!.cpuMillis,
      memBytes: given.memBytes ?? detected!.memBytes,
      gpuIndexes: given.gpuIndexes ?? detected!.gpuIndexes,
      inf: given.inf ?? detected?.inf ?? 0,
    };
    this.ledger = new ComputeLedger(capacity);
    this.log.info(
      { cpu: formatCores(capacity.cpuMillis), mem: formatBytes(capacity.memBytes), gpus: capacity.gpuIndexes, inf: capacity.inf },
      'compute capacity',
    );
  }

  private mustLedger(): ComputeLedger {
    if (!this.ledger) throw new OrchestratorError('compute placement used before start()', { code: 'ENG_COMPUTE_NOT_STARTED' });
    return this.ledger;
  }

  capacity(): ComputeCapacity {
    return this.mustLedger().capacity();
  }

  impossible(request: ComputeRequest): Array<{ readonly field: 'cpu' | 'mem' | 'gpu' | 'inf'; readonly message: string }> {
    return neverFittingCompute(request, this.capacity());
  }

  free(): ComputeCapacity {
    return this.mustLedger().free();
  }

  reserve(owner: string, request: ComputeRequest): PlacementResult {
    return this.mustLedger().reserve(owner, request);
  }

  release(owner: string): void {
    this.ledger?.release(owner);
  }
}
