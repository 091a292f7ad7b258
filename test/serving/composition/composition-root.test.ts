import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ContainerModule, inject, injectable, multiInject } from 'inversify';
import { pino } from 'pino';
import { Clock, ManualClock } from '../../../core/clock.js';
import { KindRegistry } from '../../../core/contribution/kind-registry.js';
import { Logger } from '../../../core/ports/logger.js';
import { createContainer } from '../../../serving/composition/composition-root.js';

const Contribution = Symbol('Contribution');
interface Contribution {
  readonly kind: string;
}

@injectable()
class Registry extends KindRegistry<Contribution> {
  constructor(
    @multiInject(Contribution) all: readonly Contribution[],
    @inject(Logger) readonly log: Logger,
    @inject(Clock) readonly clock: Clock,
  ) {
    super('thing', all);
  }
}

test('createContainer binds logger and clock and loads contributed modules', () => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  const clock = new ManualClock(5);
  const a = new ContainerModule(({ bind }) => {
    bind(Contribution).toConstantValue({ kind: 'a' });
  });
  const b = new ContainerModule(({ bind }) => {
    bind(Contribution).toConstantValue({ kind: 'b' });
    bind(Registry).toSelf().inSingletonScope();
  });
  const c = createContainer({ logger, clock, modules: [a, b] });
  const r = c.get(Registry);
  assert.deepEqual(r.kinds(), ['a', 'b']);
  assert.equal(r.clock.now(), 5);
  r.log.child({ component: 'test/unit' }).info({ n: 1 }, 'hello');
  assert.equal(JSON.parse(lines[0]).component, 'test/unit');
  assert.equal(c.get(Registry), r, 'singleton');
});

test('with no contributions @multiInject gives an empty list', () => {
  const logger = pino({ level: 'silent' });
  const c = createContainer({ logger, modules: [new ContainerModule(({ bind }) => void bind(Registry).toSelf())] });
  assert.deepEqual(c.get(Registry).kinds(), []);
  assert.ok(typeof c.get<Clock>(Clock).now() === 'number');
});
