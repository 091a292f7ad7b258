import { Container, ContainerModule } from 'inversify';
import type { Logger as PinoLogger } from 'pino';
import { Clock } from '../../core/clock.js';
import { Logger } from '../../core/ports/logger.js';
import { SystemClock } from './system-clock.js';

export interface CompositionOptions {
  readonly logger: PinoLogger;
  /** The ContainerModules the chosen target, transport and plugins contribute. */
  readonly modules: readonly ContainerModule[];
  /** Replace the system clock (tests). */
  readonly clock?: Clock;
}

/**
 * The composition root (SG 1.3): the only place outside tests that creates a `Container`. It binds the
 * process-wide services (logger, clock) and loads the modules that the command line chose.
 */
export function createContainer(options: CompositionOptions): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  const base = new ContainerModule(({ bind }) => {
    bind<PinoLogger>(Logger).toConstantValue(options.logger);
    if (options.clock) bind<Clock>(Clock).toConstantValue(options.clock);
    else bind<Clock>(Clock).to(SystemClock).inSingletonScope();
  });
  container.load(base, ...options.modules);
  return container;
}
