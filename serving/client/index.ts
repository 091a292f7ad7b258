export {
  ApiFailedError,
  ClientError,
  DEFAULT_CONTROL_URL,
  DeployTimeoutError,
  MyelinClient,
  UnauthorizedError,
  type ApiDetail,
  type ApiSummary,
  type DeployOptions,
  type DeployOutcome,
  type DeployProgress,
  type DeployResponse,
  type DeployResult,
  type EventHistoryOptions,
  type EventsOptions,
  type LogsOptions,
  type MyelinClientOptions,
  type PredictOptions,
  type PredictResponse,
} from './myelin-client.js';
export { ConflictError, NotFoundError } from '../daemon/control-api.js';
export { natsEvents$, type NatsEventsOptions } from './nats-events.js';
