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
export * from './ports/scaling-policy.js';
export { ScalingPolicyRegistry } from './contribution/scaling-policy-registry.js';
export { recommend, recordRecommendation, stabilize, extremeSince, cortexTick, holdForMissingData, composeReason, type CortexRecommendation, type Stabilized, type CortexTickArgs } from './scaling/cortex-rules.js';
export { ApiScaler, scaleApi, type ApiScalerOptions, type ScaleApiOptions } from './scaling/api-scaler.js';
export { ScalingPipeline, type ApiScalingSetup, type ScalingPipelineOptions } from './scaling/scaling-pipeline.js';
export { isScalingChange, type ScalingTick } from './scaling/scaling-tick.js';
export { ReplayScheduler } from './scaling/replay-scheduler.js';
export { parseLoadTrace, type LoadTrace, type TracePoint } from './scaling/load-trace.js';
export { replayTrace, type ReplayTraceOptions } from './scaling/replay-trace.js';
export { TimeWeightedWindow } from './metrics/time-weighted-window.js';
export { roundMicro, type LoadLevel, type TickLoad } from './metrics/api-load.js';
export { PredictorRegistry } from './contribution/predictor-registry.js';
export { logDebugStage, summarizeForLog, type DebugStage } from './predictor/debug-stage.js';
