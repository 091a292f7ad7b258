// @ts-check
/**
 * The shapes the page reads from the control API (serving/daemon/daemon-service.ts,
 * in-flight-recording.ts, core/events/engine-event.ts), as far as the page uses them.
 *
 * @typedef {{ '2xx': number, '4xx': number, '5xx': number, avgLatencyMs: number | null }} RequestStats
 * @typedef {{ name: string, status: string, message?: string, endpoint: string, url: string, revision: string,
 *   upToDate: number, stale: number, requested: number, failed: number, lastUpdated: number, requests: RequestStats }} ApiSummary
 * @typedef {{ id: string, revision: string, state: string, pid?: number, pendingReason?: string }} ReplicaView
 * @typedef {{ policy: string, avgInFlight: number | null, target: number, raw: number | null, recommendation: number | null,
 *   lastDecision: { t: number, from: number, to: number, reason: string } | null, lastTick: { t: number, reason: string } | null }} AutoscalerView
 * @typedef {{ modelType: 'classification', classes: Record<string, number> }
 *   | { modelType: 'regression', count: number, min: number | null, max: number | null, avg: number | null }} MonitoringView
 * @typedef {ApiSummary & { replicas: ReplicaView[], autoscaler: AutoscalerView, monitoring?: MonitoringView, lastLogLines: string[] }} ApiDetail
 * @typedef {{ t: number, inFlight: number | null, replicas: number, target: number, '2xx': number, '4xx': number, '5xx': number, latencyMsSum: number }} InFlightPoint
 * @typedef {{ t: number, apis: ApiSummary[], points: Record<string, InFlightPoint>, detail: ApiDetail | null }} MetricsMessage
 * @typedef {{ v: 1, type: string, api: string, t: number, [key: string]: unknown }} EngineEvent
 * @typedef {{ t: number, from: number, to: number, reason: string, avgInFlight?: number }} Decision
 * @typedef {{ t: number, avg: number | null, from: number, replicas: number, reason: string }} WhatIfTick
 * @typedef {{ api: string, sinceMs: number, startReplicas: number, ticks: WhatIfTick[], autoscaling: Record<string, unknown> }} WhatIfResult
 */
export {};
