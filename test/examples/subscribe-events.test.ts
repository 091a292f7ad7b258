/**
 * examples/subscribe-events as a child process against a real nats-server: a `scaling.decided` event
 * published through a `NatsEventBus` (as the daemon does) is printed as `<api>: <from> → <to> (<reason>)`,
 * other APIs and other event types are not, and SIGINT ends it with code 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../core/clock.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { NatsEventBus } from '../../adapters/transport/nats/nats-event-bus.js';
import { NatsServer, natsServerAvailable } from '../harness/nats-server.js';
import { silent } from '../adapters/transport/nats/nats-fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const skip = natsServerAvailable() ? false : 'nats-server is not installed';
const DEADLINE_MS = 30_000;

function scaling(api: string, t: number): EngineEvent {
  return { v: 1, type: 'scaling.decided', api, t, from: 1, to: 3, policy: 'in-flight', avgInFlight: 5.5, target: 2, raw: 2.75, recommendation: 3, reason: 'load above target' };
}

describe('examples/subscribe-events', { skip }, () => {
  let server: NatsServer;
  before(async () => {
    server = await NatsServer.start({ jetstream: true });
  });
  after(async () => {
    await server?.[Symbol.asyncDispose]();
  });

  it('prints scaling.decided events from NATS and exits 0 on SIGINT', async () => {
    // The daemon's defaults (prefix `myelin`, stream MYELIN_EVENTS): the example passes no prefix.
    await using bus = new NatsEventBus({ servers: server.url }, silent, new ManualClock(0));
    await bus.start();
    await bus.whenConnected();

    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/subscribe-events/subscribe-events.ts', '--nats', server.url, '--api', 'x'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MYELIN_LOG_LEVEL: 'warn' },
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const until = async (what: string, ok: () => boolean, tick?: () => void): Promise<void> => {
      const deadline = Date.now() + DEADLINE_MS;
      while (!ok()) {
        if (child.exitCode !== null) assert.fail(`the example exited (${child.exitCode}) before ${what}\nstdout: ${stdout}\nstderr: ${stderr}`);
        if (Date.now() > deadline) assert.fail(`no ${what} within ${DEADLINE_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`);
        tick?.();
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await until('listening line', () => stderr.includes('listening'));
      // The example reads live events and attaches asynchronously: publish until it has printed one.
      await until(
        'printed event',
        () => stdout.includes('\n'),
        () => {
          bus.publish({ v: 1, type: 'api.status', api: 'x', t: Date.now(), status: 'live' });
          bus.publish(scaling('y', Date.now()));
          bus.publish(scaling('x', Date.now()));
        },
      );
      const lines = stdout.split('\n').filter((l) => l !== '');
      assert.ok(lines.length >= 1);
      for (const l of lines) assert.equal(l, 'x: 1 → 3 (load above target)');

      child.kill('SIGINT');
      const [code, signal] = await Promise.race([
        exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit after SIGINT\nstderr: ${stderr}`)), 10_000).unref()),
      ]);
      assert.equal(signal, null, stderr);
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
