// Prints every `scaling.decided` event of a myelin daemon: `<api>: <from> → <to> (<reason>)`.
//
//   node --import tsx examples/subscribe-events/subscribe-events.ts [--url URL] [--api NAME] [--since MS]
//   node --import tsx examples/subscribe-events/subscribe-events.ts --nats nats://127.0.0.1:4222 [--api NAME]
//
// Without --nats it reads the daemon's control API (`MyelinClient.events$`, server-sent events; the
// token from MYELIN_TOKEN or the local state folder); with --nats it reads the daemon's NATS subjects
// directly (`natsEvents$`, JetStream replay for --since). Ctrl-C unsubscribes and exits with code 0.
import { parseArgs } from 'node:util';
import { MyelinClient, natsEvents$, type EngineEvent } from 'myelin';
import type { Observable } from 'rxjs';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.MYELIN_URL ?? 'http://127.0.0.1:8889' },
    nats: { type: 'string' },
    api: { type: 'string' },
    since: { type: 'string' },
  },
  strict: true,
});

const api = values.api;
const since = values.since === undefined ? undefined : Number(values.since);
if (since !== undefined && !Number.isFinite(since)) {
  console.error(`--since must be ms since the epoch, got "${values.since}"`);
  process.exit(2);
}

const events$: Observable<EngineEvent> =
  values.nats !== undefined
    ? natsEvents$({ servers: values.nats, api, since })
    : new MyelinClient({ url: values.url }).events$({ api, since });

const subscription = events$.subscribe({
  next: (e) => {
    if (e.type === 'scaling.decided') console.log(`${e.api}: ${e.from} → ${e.to} (${e.reason})`);
  },
  error: (err: unknown) => {
    console.error(`events stopped: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
});
console.error(`listening for scaling.decided events${api ? ` of ${api}` : ''} on ${values.nats ?? values.url} (Ctrl-C to stop)`);

process.once('SIGINT', () => {
  // Unsubscribing closes the connection; with nothing left the process ends on its own, with code 0.
  subscription.unsubscribe();
  process.exitCode = 0;
  setTimeout(() => process.exit(0), 3000).unref();
});
