/**
 * A real nats-server for tests (SG 9.3): `/usr/sbin/nats-server -a 127.0.0.1 -p -1 --ports_file_dir <tmp>`
 * (plus `-js -sd <tmp>/js` for JetStream). The random port is read from `nats-server_<pid>.ports`,
 * racing an early exit. `stop()` kills it (SIGKILL by default: an outage, not a goodbye) and `restart()`
 * starts it again on the same port with the same JetStream store. One server per test file;
 * `await using` removes it and its directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER_BIN = process.env.MYELIN_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface NatsServerOptions {
  /** Enable JetStream with its store in the server's temporary directory. */
  readonly jetstream?: boolean;
  /** How long to wait for the ports file before giving up (ms); default 15 000. */
  readonly startTimeoutMs?: number;
  /** More command-line arguments for nats-server. */
  readonly extraArgs?: readonly string[];
}

/** True when the nats-server binary is installed (tests say why they skip otherwise). */
export function natsServerAvailable(): boolean {
  return existsSync(NATS_SERVER_BIN);
}

export class NatsServer implements AsyncDisposable {
  private proc: ChildProcess | undefined;
  private portNumber = 0;
  private stderrTail = '';

  private constructor(
    private readonly dir: string,
    private readonly options: NatsServerOptions,
  ) {}

  /** Starts a server on a random loopback port; rejects with its stderr if it exits or stalls. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const dir = await mkdtemp(join(tmpdir(), 'myelin-nats-'));
    const s = new NatsServer(dir, options);
    try {
      await s.spawn(-1);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return s;
  }

  /** `nats://127.0.0.1:<port>`; the same across restarts. */
  get url(): string {
    return `nats://127.0.0.1:${this.portNumber}`;
  }
  get port(): number {
    return this.portNumber;
  }
  /** The server's temporary directory (ports file, JetStream store); removed on disposal. */
  get directory(): string {
    return this.dir;
  }
  get pid(): number | undefined {
    return this.proc?.pid;
  }
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Kills the server (SIGKILL unless told otherwise) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill(signal);
    await exited;
  }

  /** Starts the server again on the same port (and JetStream store). */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn(this.portNumber);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async spawn(port: number): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(port), '--ports_file_dir', this.dir];
    if (this.options.jetstream) args.push('-js', '-sd', join(this.dir, 'js'));
    args.push(...(this.options.extraArgs ?? []));
    const p = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = p;
    this.stderrTail = '';
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) => {
      p.once('error', (err) => reject(new Error(`could not start ${NATS_SERVER_BIN}: ${err.message}`)));
      p.once('exit', (code, sig) => reject(new Error(`nats-server exited early (${code ?? sig}):\n${this.stderrTail}`)));
    });
    exited.catch(() => undefined);
    const url = await Promise.race([this.readPortsFile(p), exited]);
    this.portNumber = Number(new URL(url).port);
  }

  private async readPortsFile(p: ChildProcess): Promise<string> {
    const file = join(this.dir, `nats-server_${p.pid}.ports`);
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (p.exitCode !== null || p.signalCode !== null) break;
      try {
        const ports = JSON.parse(await readFile(file, 'utf8')) as { nats?: string[] };
        const url = ports.nats?.[0];
        if (url) return url;
      } catch {
        // not written yet (or half written): poll again
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    p.kill('SIGKILL');
    throw new Error(`nats-server wrote no ports file within the deadline:\n${this.stderrTail}`);
  }
}
