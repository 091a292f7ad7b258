/**
 * The public surface of myelin: what plugins and predictor files import (`import type { Predictor } from 'myelin'`).
 * Everything exported here is a stable contract.
 */
export * from './errors.js';
export * from './clock.js';
export * from './config/api-spec.js';
export * from './metrics/metric-sample.js';
export * from './events/engine-event.js';
export * from './contribution/kind-registry.js';
export { Logger } from './ports/logger.js';
export { MetricsTransport, type TransportStats } from './ports/metrics-transport.js';
export { EventBus, type EventQuery } from './ports/event-bus.js';
export { ChildMetricsSink, type IpcMessageSource } from './ports/metrics-transport.js';
export { isMetricSample, decodeMetricSample, encodeMetricSample, METRIC_SAMPLE_SCHEMA_ID } from './metrics/metric-sample-validator.js';
export { isEngineEvent, decodeEngineEvent, encodeEngineEvent, EVENT_SCHEMA_ID } from './events/event-validator.js';
export * from './predictor/predictor-contract.js';
export { PredictorBackendContribution, type LoadedPredictor, type BackendPredictArgs } from './ports/predictor-backend.js';
export { OrchestratorTarget, type ReplicaInfo, type ReplicaAddress, type ReplicaState, type ApiDeployment, type ApiReplicaStatus } from './ports/orchestrator-target.js';
