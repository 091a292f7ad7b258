import { ContainerModule } from 'inversify';
import { Logger } from '../../core/ports/logger.js';
import { OrchestratorTarget } from '../../core/ports/orchestrator-target.js';
import { Gateway, type GatewayConfig as GatewayConfigShape } from './gateway.js';

/** Token for the gateway's settings (`GatewayConfig`); optional — every field has a default. */
export const GatewayConfig = Symbol('GatewayConfig');
export type GatewayConfig = GatewayConfigShape;

/**
 * The gateway (SG 1.1): binds `Gateway` as a singleton fed by the bound `OrchestratorTarget`'s
 * `replicas$()`, with the settings bound under `GatewayConfig` when there are any. The daemon calls
 * `start()`, routes APIs with `upsertApi`/`removeApi`/`setRoutes`, and `close()` on shutdown.
 */
export const gatewayModule = new ContainerModule(({ bind }) => {
  bind(Gateway)
    .toDynamicValue((ctx) => {
      const config = ctx.get<GatewayConfig>(GatewayConfig, { optional: true }) ?? {};
      const target = ctx.get<OrchestratorTarget>(OrchestratorTarget);
      return new Gateway({ ...config, replicas$: target.replicas$() }, ctx.get<Logger>(Logger));
    })
    .inSingletonScope();
});
