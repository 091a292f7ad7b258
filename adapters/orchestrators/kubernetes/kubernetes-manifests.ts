import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Container, V1Deployment, V1EnvVar, V1Secret, V1Service, V1Volume } from '@kubernetes/client-node';
import type { ApiSpec, IntOrPercent } from '../../../core/config/api-spec.js';
import { rebaseSpec } from '../../../core/config/rebase-spec.js';
import { OrchestratorError } from '../../../core/errors.js';
import { predictorRunsInPython, withPythonInterpreter } from '../../../core/predictor/python-predictor.js';
import type { ApiDeployment, ProjectRef } from '../../../core/ports/orchestrator-target.js';

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

/** Where a pod finds its project: the init container writes it here (an `emptyDir`), the replica runs in it. */
export const PROJECT_MOUNT = '/project';
/** Where the ConfigMap holding the encoded bundle is mounted (mode `config-map`). */
export const BUNDLE_MOUNT = '/bundle';
/**
 * Where the init container installs the project's requirements.txt (an `emptyDir`, `myelin fetch-project
 * --python-env`), and the interpreter the replica then runs: `current` links the installed virtualenv.
 */
export const PYTHON_ENV_MOUNT = '/python-env';
export const POD_PYTHON = `${PYTHON_ENV_MOUNT}/current/bin/python`;
/** The key of the encoded bundle in the ConfigMap (what `myelin fetch-project --from DIR` reads). */
export const BUNDLE_KEY = 'project.bundle';
/** The init container that fetches the project. */
export const FETCH_CONTAINER_NAME = 'fetch-project';
/** The key of the project token in the API's Secret. */
export const PROJECT_TOKEN_KEY = 'token';
/** The env vars `myelin fetch-project` reads (serving/cli/commands/fetch-project.ts). */
export const PROJECT_URL_ENV = 'MYELIN_PROJECT_URL';
export const PROJECT_TOKEN_ENV = 'MYELIN_PROJECT_TOKEN';
/**
 * Largest encoded bundle put in a ConfigMap: Kubernetes refuses objects over 1 MiB, and the rest of
 * the object (and some headroom) must fit too.
 */
export const MAX_CONFIG_MAP_BUNDLE_BYTES = 900 * 1024;

/**
 * How an API's pods get their project (an init container `fetch-project` writes it into an
 * `emptyDir` at `/project`):
 * - `daemon`: downloaded from the daemon at `url` (`<daemonUrl>/v1/projects/<id>?api=<name>`) with
 *   the API's token from the Secret `api-<name>-project` (what the kubernetes target applies);
 * - `config-map`: read from the ConfigMap `api-<name>-project` mounted at `/bundle` (what
 *   `myelin render` prints, so the output needs nothing from the daemon's disk).
 */
export type ProjectDelivery = ({ readonly kind: 'daemon'; readonly url: string } | { readonly kind: 'config-map' }) & {
  /**
   * The project has requirements.txt at its root: for an API that runs Python, the init container
   * installs it into a virtualenv on an `emptyDir` at `/python-env` (from the package index the
   * cluster reaches; packages of the image's Python satisfy theirs without a download) and the
   * replica runs that interpreter, as `myelin up` does on one machine.
   */
  readonly pythonRequirements?: boolean;
};

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
  /**
   * The ServiceAccount API pods run as (e.g. one annotated for IAM Roles for Service Accounts, so the
   * replicas read `s3://` models with the role's credentials); default the namespace's `default`.
   */
  readonly serviceAccountName?: string;
  /** Secrets of type `kubernetes.io/dockerconfigjson` for pulling the image from a private registry. */
  readonly imagePullSecrets?: readonly string[];
}

/** The pod-level credentials of `o`: service account and image pull secrets, when set. */
export function podCredentials(o: Pick<ManifestOptions, 'serviceAccountName' | 'imagePullSecrets'>): { serviceAccountName?: string; imagePullSecrets?: { name: string }[] } {
  return {
    ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
    ...(o.imagePullSecrets && o.imagePullSecrets.length > 0 ? { imagePullSecrets: o.imagePullSecrets.map((name) => ({ name })) } : {}),
  };
}

/** The default daemon URL pods fetch their project from: the `myelin` Service of the namespace. */
export function defaultDaemonUrl(namespace: string): string {
  return `http://myelin.${namespace}.svc:8889`;
}

/** `<daemonUrl>/v1/projects/<id>?api=<name>`: where an API's init container downloads its project. */
export function projectUrl(daemonUrl: string, project: Pick<ProjectRef, 'id'>, api: string): string {
  return `${daemonUrl.replace(/\/+$/, '')}/v1/projects/${encodeURIComponent(project.id)}?api=${encodeURIComponent(api)}`;
}

/** `api-<name>-project`: the Secret (project token) and the ConfigMap (encoded bundle) of an API. */
export function projectObjectName(api: string): string {
  return `${objectName(api)}-project`;
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
 *
 * With a `delivery`, the pod gets its project from an init container (see `ProjectDelivery`), the
 * replica runs in `/project` and `MYELIN_API_SPEC` holds the spec rebased there (model URLs are
 * left as they are: the replica downloads them itself). Without, the spec is passed as it is.
 */
export function deploymentManifest(d: ApiDeployment, o: ManifestOptions, delivery?: ProjectDelivery): V1Deployment {
  const { revision } = d;
  const installs = delivery?.pythonRequirements === true && predictorRunsInPython(d.spec);
  const rebased = delivery ? rebaseSpec(d.spec, d.spec.projectDir, PROJECT_MOUNT) : d.spec;
  const spec = installs ? withPythonInterpreter(rebased, POD_PYTHON) : rebased;
  const api = spec.name;
  const c = spec.compute;
  const requests: Record<string, string> = { cpu: cpuQuantity(c.cpuMillis) };
  const limits: Record<string, string> = {};
  if (c.memBytes !== null) requests.memory = limits.memory = memoryQuantity(c.memBytes);
  if (c.gpu > 0) requests['nvidia.com/gpu'] = limits['nvidia.com/gpu'] = String(c.gpu);
  if (c.inf > 0) requests['aws.amazon.com/neuron'] = limits['aws.amazon.com/neuron'] = String(c.inf);
  const env: V1EnvVar[] = [
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
      annotations: { [SPEC_ID_ANNOTATION]: specId(d.spec, revision), [REVISION_LABEL]: revision },
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
          ...podCredentials(o),
          ...(delivery ? { initContainers: [fetchProjectContainer(api, o, delivery, installs)], volumes: projectVolumes(api, delivery, installs) } : {}),
          containers: [
            {
              name: CONTAINER_NAME,
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              command: [...o.command],
              ...(delivery ? { workingDir: PROJECT_MOUNT, volumeMounts: projectMounts(installs) } : {}),
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

const PROJECT_VOLUME = 'project';
const BUNDLE_VOLUME = 'bundle';
const PYTHON_ENV_VOLUME = 'python-env';

/** The project folder, and the virtualenv's when the init container installs requirements.txt. */
function projectMounts(installs: boolean): { name: string; mountPath: string }[] {
  return [{ name: PROJECT_VOLUME, mountPath: PROJECT_MOUNT }, ...(installs ? [{ name: PYTHON_ENV_VOLUME, mountPath: PYTHON_ENV_MOUNT }] : [])];
}

/** The command prefix of the image's CLI: the replica command minus its last word (`['myelin']` by default). */
export function commandPrefix(command: readonly string[]): string[] {
  return command.length > 1 ? command.slice(0, -1) : ['myelin'];
}

/**
 * The init container `fetch-project`: same image, `myelin fetch-project --dest /project` (`--from
 * /bundle` for a ConfigMap; `--python-env /python-env` when it installs requirements.txt).
 */
export function fetchProjectContainer(api: string, o: ManifestOptions, delivery: ProjectDelivery, installs = false): V1Container {
  const fromConfigMap = delivery.kind === 'config-map';
  return {
    name: FETCH_CONTAINER_NAME,
    image: o.image,
    ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
    command: [
      ...commandPrefix(o.command),
      'fetch-project',
      '--dest',
      PROJECT_MOUNT,
      ...(fromConfigMap ? ['--from', BUNDLE_MOUNT] : []),
      ...(installs ? ['--python-env', PYTHON_ENV_MOUNT] : []),
    ],
    ...(delivery.kind === 'daemon'
      ? {
          env: [
            { name: PROJECT_URL_ENV, value: delivery.url },
            { name: PROJECT_TOKEN_ENV, valueFrom: { secretKeyRef: { name: projectObjectName(api), key: PROJECT_TOKEN_KEY } } },
          ],
        }
      : {}),
    volumeMounts: [...projectMounts(installs), ...(fromConfigMap ? [{ name: BUNDLE_VOLUME, mountPath: BUNDLE_MOUNT, readOnly: true }] : [])],
  };
}

/**
 * The pod's volumes: the `emptyDir` the project is written to, the virtualenv's when requirements.txt
 * is installed, and the bundle's ConfigMap in mode `config-map`.
 */
export function projectVolumes(api: string, delivery: ProjectDelivery, installs = false): V1Volume[] {
  return [
    { name: PROJECT_VOLUME, emptyDir: {} },
    ...(installs ? [{ name: PYTHON_ENV_VOLUME, emptyDir: {} }] : []),
    ...(delivery.kind === 'config-map' ? [{ name: BUNDLE_VOLUME, configMap: { name: projectObjectName(api) } }] : []),
  ];
}

/** The Secret `api-<name>-project` holding the API's project token (key `token`), read by its init container. */
export function projectSecretManifest(api: string, token: string, o: Pick<ManifestOptions, 'namespace'>): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: projectObjectName(api), namespace: o.namespace, labels: { [API_LABEL]: api, [MANAGED_BY_LABEL]: MANAGED_BY } },
    type: 'Opaque',
    data: { [PROJECT_TOKEN_KEY]: Buffer.from(token, 'utf8').toString('base64') },
  };
}

/**
 * The ConfigMap `api-<name>-project` holding the encoded project bundle (`encodeBundle`) under
 * `project.bundle`. Throws `OrchestratorError` when the bundle is larger than
 * `MAX_CONFIG_MAP_BUNDLE_BYTES` (Kubernetes refuses objects over 1 MiB).
 */
export function projectConfigMapManifest(api: string, encodedBundle: Uint8Array, o: Pick<ManifestOptions, 'namespace'>): V1ConfigMap {
  if (encodedBundle.byteLength > MAX_CONFIG_MAP_BUNDLE_BYTES) {
    throw new OrchestratorError(
      `kubernetes: the project of api ${api} is ${Math.ceil(encodedBundle.byteLength / 1024)} KiB compressed, more than a ConfigMap can hold (${MAX_CONFIG_MAP_BUNDLE_BYTES / 1024} KiB; Kubernetes refuses objects over 1 MiB): move large files (models) to s3:// or https:// URLs, or deploy through the daemon`,
    );
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: projectObjectName(api), namespace: o.namespace, labels: { [API_LABEL]: api, [MANAGED_BY_LABEL]: MANAGED_BY } },
    binaryData: { [BUNDLE_KEY]: Buffer.from(encodedBundle).toString('base64') },
  };
}
