import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeKubeApi } from '../../../harness/fake-kube-api.js';

/** Where the real kubectl lives on the test machines. */
export const KUBECTL = '/usr/bin/kubectl';

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The real `kubectl`, pointed at a fake API server through a kubeconfig in a temporary HOME (so
 * its discovery cache and config never touch the user's). Runs asynchronously: the fake lives in
 * this process and must keep answering while kubectl runs.
 */
export class Kubectl implements AsyncDisposable {
  private constructor(private readonly home: string) {}

  static async for(fake: FakeKubeApi): Promise<Kubectl> {
    const home = await mkdtemp(join(tmpdir(), 'myelin-kubectl-'));
    await writeFile(join(home, 'kubeconfig'), fake.kubeconfig());
    return new Kubectl(home);
  }

  /** Runs `kubectl --request-timeout=5s <args>`; never rejects (the exit code is in the result); killed after 30 s. */
  run(...args: string[]): Promise<KubectlResult> {
    return this.runWithInput(undefined, ...args);
  }

  /** Like `run`, writing `input` to kubectl's stdin (for `-f -`). */
  runWithInput(input: string | undefined, ...args: string[]): Promise<KubectlResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(KUBECTL, ['--request-timeout=5s', ...args], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, KUBECONFIG: join(this.home, 'kubeconfig'), KUBECACHEDIR: join(this.home, 'cache') },
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: 30_000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
      child.stdin.end(input ?? '');
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await rm(this.home, { recursive: true, force: true });
  }
}
