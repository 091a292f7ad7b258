// The daemon in this process (`runDaemon`), for the e2e files that read its internals (models-s3,
// models-multi). The rest of the suite drives a real `myelin up` child process (e2e-harness.ts).
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { packProject } from '../../serving/daemon/project-bundle.js';
import { runDaemon, type DaemonOptions, type RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { writeSlowProject } from './e2e-harness.js';

export interface InProcessDaemon {
  readonly running: RunningDaemon;
  readonly dir: string;
  readonly stateDir: string;
  readonly logFile: string;
  deploy(yaml: string): Promise<void>;
  url(api: string): Promise<string>;
  close(): Promise<void>;
}

export async function startInProcessDaemon(
  options: { readonly nats?: string; readonly stateDir?: string; readonly dir?: string; readonly daemon?: Partial<Pick<DaemonOptions, 'headersTimeoutMs' | 'requestTimeoutMs' | 'directConnections'>> } = {},
): Promise<InProcessDaemon> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'myelin-e2e-')));
  const stateDir = options.stateDir ?? join(dir, 'state');
  const logFile = join(dir, `daemon-${Date.now()}.log`);
  const log: Logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true }));
  const running = await runDaemon({
    stateDir,
    target: 'local',
    nats: options.nats,
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log,
    local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 10_000, probeIntervalMs: 200 },
    ...options.daemon,
  });
  const project = join(dir, 'project');
  return {
    running,
    dir,
    stateDir,
    logFile,
    async deploy(yaml: string) {
      await mkdir(project, { recursive: true });
      await writeSlowProject(project, yaml);
      await running.daemon.deploy(await packProject(project, 'myelin.yaml'), { force: true });
    },
    async url(api: string) {
      return (await running.daemon.get(api)).url;
    },
    async close() {
      await running.stop();
    },
  };
}
