import { createHash } from 'node:crypto';
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import type { ApiSpec, IntOrPercent } from '../../../core/config/api-spec.js';
import type { ApiDeployment } from '../../../core/ports/orchestrator-target.js';

/** Label on every object and pod: the API's name (the Deployment's selector). */
export const API_LABEL = 'myelin.dev/api';
/** Label on pods: the revision (predictor id) the pod runs. */
export const REVISION_LABEL = 'myelin.dev/revision';
/** Annotation on the Deployment: a hash of the whole ApiSpec and revision (changes also when only autoscaling/networking change). */
export const SPEC_ID_ANNOTATION = 'myelin.dev/spec-id';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'myelin';
/** The replica's container name and HTTP port (Cortex's 8888). */
export const CONTAINER_NAME = 'replica';
export const REPLICA_PORT = 8888;
/** Env var carrying the resolved ApiSpec as JSON; the replica reads it at start. */
export const API_SPEC_ENV = 'MYELIN_API_SPEC';

/** What the manifests need besides the deployment itself (resolved daemon options). */
export interface ManifestOptions {
  readonly namespace: string;
  readonly image: string;
  readonly imagePullPolicy?: string;
  /** Command of the replica container; the spec arrives in `MYELIN_API_SPEC`. */
  readonly command: readonly string[];
  readonly terminationGracePeriodSeconds: number;
  /** More environment for every replica container, e.g. `MYELIN_NATS_URL` so pods publish samples to NATS. */
  readonly replicaEnv?: Readonly<Record<string, string>>;
}

/** `api-<name>`: the Deployment's and the Service's name (a DNS-1035 label, so at most 63 characters). */
export function objectName(api: string): string {
  return `api-${api}`;
}

/** CPU in millicores as a Kubernetes quantity: 200 → `200m`. */
export function cpuQuantity(millis: number): string {
  return `${Math.round(millis)}m`;
}

/** Memory in bytes as a Kubernetes quantity, in the largest binary unit that divides it: 1073741824 → `1Gi`, 1000 → `1000`. */
export function memoryQuantity(bytes: number): string {
  for (const [unit, size] of [['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(Math.round(bytes));
}

/** A spec's int-or-percent as Kubernetes writes it: `{absolute 1}` → `1`, `{percent 25}` → `"25%"`. */
export function intOrPercent(v: IntOrPercent): number | string {
  return v.kind === 'absolute' ? v.value : `${v.value}%`;
}

/** Short hash of the whole spec and revision, for the `myelin.dev/spec-id` annotation. */
export function specId(spec: ApiSpec, revision: string): string {
  return createHash('sha256').update(JSON.stringify([revision, spec])).digest('hex').slice(0, 10);
}

/**
 * The apps/v1 Deployment for one API: `replicas` pods of the replica image, the spec in
 * `MYELIN_API_SPEC`, compute as requests/limits (cpu request; memory request = limit; GPUs and
 * Inferentia chips as extended resources, which Kubernetes takes in limits), the update strategy as
 * RollingUpdate maxSurge/maxUnavailable, readiness `GET /healthz/ready` and liveness
 * `GET /healthz/live` on 8888. The pod template carries the revision, so a new revision changes the
 * template and Kubernetes rolls; anything else (replicas, strategy, annotations) does not.
 */
export function deploymentManifest(d: ApiDeployment, o: ManifestOptions): V1Deployment {
  const { spec, revision } = d;
  const api = spec.name;
  const c = spec.compute;
  const requests: Record<string, string> = { cpu: cpuQuantity(c.cpuMillis) };
  const limits: Record<string, string> = {};
  if (c.memBytes !== null) requests.memory = limits.memory = memoryQuantity(c.memBytes);
  if (c.gpu > 0) requests['nvidia.com/gpu'] = limits['nvidia.com/gpu'] = String(c.gpu);
  if (c.inf > 0) requests['aws.amazon.com/neuron'] = limits['aws.amazon.com/neuron'] = String(c.inf);
  const env = [
    { name: API_SPEC_ENV, value: JSON.stringify(spec) },
    { name: 'MYELIN_API', value: api },
    { name: 'MYELIN_REVISION', value: revision },
    { name: 'MYELIN_PORT', value: String(REPLICA_PORT) },
    // Pods are reached on their pod IP (kubelet probes, the gateway), not on loopback.
    { name: 'MYELIN_HOST', value: '0.0.0.0' },
    ...Object.entries(o.replicaEnv ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    { name: 'MYELIN_REPLICA_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // The predictor's own env (`predictor.env`), also set on the process so libraries see it at import time.
    ...Object.keys(spec.predictor.env)
      .filter((k) => !k.startsWith('MYELIN_'))
      .sort()
      .map((k) => ({ name: k, value: spec.predictor.env[k] })),
  ];
  const labels = { [API_LABEL]: api, [MANAGED_BY_LABEL]: MANAGED_BY };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: objectName(api),
      namespace: o.namespace,
      labels,
      annotations: { [SPEC_ID_ANNOTATION]: specId(spec, revision), [REVISION_LABEL]: revision },
    },
    spec: {
      replicas: d.replicas,
      selector: { matchLabels: { [API_LABEL]: api } },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: intOrPercent(spec.updateStrategy.maxSurge), maxUnavailable: intOrPercent(spec.updateStrategy.maxUnavailable) },
      },
      template: {
        metadata: { labels: { ...labels, [REVISION_LABEL]: revision } },
        spec: {
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          containers: [
            {
              name: CONTAINER_NAME,
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              command: [...o.command],
              env,
              ports: [{ name: 'http', containerPort: REPLICA_PORT, protocol: 'TCP' }],
              resources: Object.keys(limits).length ? { requests, limits } : { requests },
              readinessProbe: {
                httpGet: { path: '/healthz/ready', port: REPLICA_PORT },
                periodSeconds: 1,
                timeoutSeconds: 1,
                successThreshold: 1,
                failureThreshold: 3,
              },
              // Cortex's liveness: every 5 s, dead after 3 misses; the first check waits for the predictor to load.
              livenessProbe: {
                httpGet: { path: '/healthz/live', port: REPLICA_PORT },
                initialDelaySeconds: 5,
                periodSeconds: 5,
                timeoutSeconds: 3,
                failureThreshold: 3,
              },
            },
          ],
        },
      },
    },
  };
}

/** The core/v1 Service `api-<name>`: ClusterIP, port 8888 → the pods' 8888, selecting the API's pods. */
export function serviceManifest(api: string, o: Pick<ManifestOptions, 'namespace'>): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: objectName(api), namespace: o.namespace, labels: { [API_LABEL]: api, [MANAGED_BY_LABEL]: MANAGED_BY } },
    spec: {
      type: 'ClusterIP',
      selector: { [API_LABEL]: api },
      ports: [{ name: 'http', port: REPLICA_PORT, targetPort: REPLICA_PORT, protocol: 'TCP' }],
    },
  };
}
