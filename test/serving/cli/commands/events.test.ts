import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineEvent } from '../../../../core/events/engine-event.js';
import { isEngineEvent } from '../../../../core/events/event-validator.js';
import { events, formatEvent } from '../../../../serving/cli/commands/events.js';
import { ExitError } from '../../../../serving/cli/exit-error.js';

const t = Date.UTC(2025, 0, 2, 3, 4, 5);
const at = '2025-01-02T03:04:05.000Z';

test('formatEvent: model events and model download progress read as sentences', () => {
  const cases: ReadonlyArray<{ name: string; e: EngineEvent; want: string }> = [
    {
      name: 'a download by the daemon, under way',
      e: { v: 1, type: 'model.download', api: 'iris', t, url: 's3://b/iris/1/', bytes: 3 * 2 ** 20, total: 4 * 2 ** 20, rateBytesPerSec: 1.5 * 2 ** 20, done: false },
      want: `${at}  iris  model.download  s3://b/iris/1/: 3.0 MiB of 4.0 MiB (75%, 1.5 MiB/s)`,
    },
    {
      name: 'a download by a replica, done',
      e: { v: 1, type: 'model.download', api: 'iris', t, url: 's3://b/iris/2/', bytes: 2048, total: 2048, rateBytesPerSec: 1024, done: true, replica: 'iris-abc-0' },
      want: `${at}  iris  model.download  s3://b/iris/2/: downloaded 2.0 KiB (1.0 KiB/s) (replica iris-abc-0)`,
    },
    {
      name: 'a version of a named model added',
      e: { v: 1, type: 'model.version', api: 'multi', t, model: 'resnet', version: '1617181920', change: 'added', replica: 'multi-1-0' },
      want: `${at}  multi  model.version  model resnet: version 1617181920 added (replica multi-1-0)`,
    },
    {
      name: 'a version of the single model removed',
      e: { v: 1, type: 'model.version', api: 'iris', t, model: '_cortex_default', version: '2', change: 'removed' },
      want: `${at}  iris  model.version  the model: version 2 removed`,
    },
    {
      name: 'a models deploy line',
      e: { v: 1, type: 'deploy.progress', api: 'iris', t, stage: 'models', line: 's3://b/iris/1/: downloaded 4.0 MiB (1.0 MiB/s)' },
      want: `${at}  iris  deploy.progress  models: s3://b/iris/1/: downloaded 4.0 MiB (1.0 MiB/s)`,
    },
  ];
  for (const c of cases) {
    assert.ok(isEngineEvent(c.e), `${c.name}: the case is a valid event`);
    const got = formatEvent(c.e);
    assert.equal(got, c.want, `${c.name}: want ${c.want}, got ${got}`);
  }
});

test('events: a --since the duration parser refuses exits 2 before any request', async () => {
  for (const since of ['', '10', '10x', '5m junk']) {
    // Port 9 on loopback: nothing is asked of it, the flag is refused first.
    await assert.rejects(
      events({ url: 'http://127.0.0.1:9', follow: false, since, output: 'json', stdout: process.stdout }),
      (err: unknown) => err instanceof ExitError && err.exitCode === 2 && err.message.startsWith('error: --since: invalid duration'),
      `since ${JSON.stringify(since)}`,
    );
  }
});
