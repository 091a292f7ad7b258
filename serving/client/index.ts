export {
  ApiFailedError,
  ClientError,
  MyelinClient,
  UnauthorizedError,
  type ApiDetail,
  type ApiSummary,
  type DeployOptions,
  type DeployOutcome,
  type DeployProgress,
  type DeployResponse,
  type DeployResult,
  type EventsOptions,
  type LogsOptions,
  type MyelinClientOptions,
  type PredictOptions,
  type PredictResponse,
} from './myelin-client.js';
export type { EngineEvent } from '../../core/events/engine-event.js';
export { ConfigError, EngineError } from '../../core/errors.js';
export { ConflictError, NotFoundError } from '../daemon/control-api.js';
export { natsEvents$, type NatsEventsOptions } from './nats-events.js';
