/**
 * Compute accounting for a target that places replicas itself (the `local` orchestrator): the
 * machine's capacity, what each replica reserves against it, and which GPUs a replica gets.
 * Quantities use the ApiSpec's units: CPU in millicores, memory in bytes, GPUs and Inferentia chips
 * as whole devices. Implemented in `adapters/compute/`; kept here so orchestrators reach it through
 * a port (SG 1.2).
 */

/** What one replica asks for (ApiSpec `compute`; a `memBytes` of 0 means "not requested"). */
export interface ComputeRequest {
  readonly cpuMillis: number;
  readonly memBytes: number;
  readonly gpu: number;
  readonly inf: number;
}

/** A machine's schedulable capacity, or what is left of it. */
export interface ComputeCapacity {
  /** Millicores (2 cores = 2000). */
  readonly cpuMillis: number;
  readonly memBytes: number;
  /** Device indexes (as nvidia-smi numbers them) of the GPUs that can be handed out. */
  readonly gpuIndexes: readonly number[];
  /** Inferentia chips (none is detected on its own; only an explicit capacity sets it). */
  readonly inf: number;
}

/** The answer to `reserve`: the devices handed out, or why the request does not fit now. */
export type PlacementResult =
  | { readonly ok: true; readonly gpuIndexes: readonly number[] }
  | {
      readonly ok: false;
      /** For people, e.g. `compute unavailable: requested 4 cpu, 1.8 free of 2`. */
      readonly reason: string;
      /** True when the request exceeds the whole machine (it can never fit, whatever stops). */
      readonly neverFits: boolean;
    };

export const ComputePlacement = Symbol('ComputePlacement');
/**
 * Reservations against one machine. `start()` finds the capacity (may run a tool such as
 * nvidia-smi, bounded in time); `reserve`/`release` are synchronous and never throw for a request
 * that does not fit (that is a `{ ok: false }` value). Not thread-safe beyond Node's one event loop.
 */
export interface ComputePlacement {
  start(): Promise<void>;
  /** The whole schedulable capacity. Throws `OrchestratorError` `ENG_COMPUTE_NOT_STARTED` if called before `start()` resolved. */
  capacity(): ComputeCapacity;
  /** Capacity minus every live reservation. */
  free(): ComputeCapacity;
  /** Reserves `request` for `owner` (a replica id). Reserving twice for one owner throws `OrchestratorError` `ENG_COMPUTE_RESERVED`. */
  reserve(owner: string, request: ComputeRequest): PlacementResult;
  /** Gives back what `owner` holds; a no-op for an owner holding nothing. */
  release(owner: string): void;
  /**
   * What in `request` exceeds the whole capacity (it can never be placed, whatever stops), one entry
   * per field (`cpu`, `mem`, `gpu`, `inf`) with Cortex's wording; empty when it fits an idle machine.
   * Throws if called before `start()` resolved.
   */
  impossible?(request: ComputeRequest): Array<{ readonly field: 'cpu' | 'mem' | 'gpu' | 'inf'; readonly message: string }>;
}
