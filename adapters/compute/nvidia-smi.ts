import { execFile } from 'node:child_process';

/** One GPU as `nvidia-smi --query-gpu=index,memory.total --format=csv,noheader` lists it. */
export interface NvidiaGpu {
  readonly index: number;
  /** Total device memory in bytes (0 when nvidia-smi printed something else, e.g. `[N/A]`). */
  readonly memBytes: number;
}

const MEM_UNITS: Readonly<Record<string, number>> = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

/**
 * Parses nvidia-smi's CSV (`0, 16160 MiB` per line). Lines that do not start with a device index are
 * skipped, so a warning line printed by the driver does not count as a GPU.
 */
export function parseNvidiaSmiGpus(csv: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const raw of csv.split('\n')) {
    const line = raw.trim();
    const m = /^(\d+)\s*,\s*(?:(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB))?/.exec(line);
    if (!m) continue;
    const memBytes = m[2] !== undefined ? Math.round(Number(m[2]) * MEM_UNITS[m[3]]) : 0;
    gpus.push({ index: Number(m[1]), memBytes });
  }
  return gpus;
}

export interface NvidiaSmiOptions {
  /** Executable to run; default `nvidia-smi` (looked up on PATH). */
  readonly command?: string;
  /** The query is killed after this long and counts as "no GPU"; default 5000 ms. */
  readonly timeoutMs?: number;
}

/**
 * The GPUs nvidia-smi sees, or `[]` when it is not installed, fails, or does not answer within the
 * timeout (a machine without a working driver has no GPU to hand out). Never throws.
 */
export function queryNvidiaGpus(options: NvidiaSmiOptions = {}): Promise<NvidiaGpu[]> {
  const command = options.command ?? 'nvidia-smi';
  return new Promise((resolve) => {
    execFile(
      command,
      ['--query-gpu=index,memory.total', '--format=csv,noheader'],
      { timeout: options.timeoutMs ?? 5000, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, windowsHide: true },
      (err, stdout) => resolve(err ? [] : parseNvidiaSmiGpus(String(stdout))),
    );
  });
}
