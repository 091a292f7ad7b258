import type { KubernetesObject, V1Deployment, V1PolicyRule, V1Role, V1RoleBinding, V1Service, V1ServiceAccount } from '@kubernetes/client-node';
import { DEFAULT_GATEWAY_PORT } from '../../../core/config/api-spec.js';
import { MANAGED_BY, MANAGED_BY_LABEL } from './kubernetes-manifests.js';
import { DEFAULT_REPLICA_IMAGE } from './kubernetes-orchestrator-options.js';

/** Name of the daemon's ServiceAccount, Role, RoleBinding, Deployment and control Service. */
export const CONTROL_PLANE_NAME = 'myelin';
/** The Service in front of the daemon's gateway (port 8888, what clients call). */
export const GATEWAY_SERVICE_NAME = 'myelin-gateway';
/** The bundled NATS server (JetStream), Deployment and Service. */
export const NATS_NAME = 'myelin-nats';
export const NATS_IMAGE = 'nats:2';
export const NATS_PORT = 4222;
/** The daemon's control API port (`myelin up --port`). */
export const CONTROL_PORT = 8889;
/** Label on every control-plane object (and the daemon's and NATS's pods, their selectors). */
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
/** The daemon pod's volume (an `emptyDir`; a PersistentVolumeClaim for production, docs/kubernetes.md). */
export const DAEMON_VOLUME_DIR = '/var/lib/myelin';
/**
 * The daemon's state folder (projects, APIs, token), a subfolder of the volume: the daemon makes it
 * its own (mode 0700), which it could not do to the volume's root, owned by root while the image runs as `node`.
 */
export const DAEMON_STATE_DIR = `${DAEMON_VOLUME_DIR}/state`;

/** One RBAC rule: the API groups, resources (`plural` or `plural/subresource`) and verbs it allows. */
export interface ControlPlaneRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/**
 * Everything the `kubernetes` target calls on the API server, and nothing more: the daemon's Role.
 * A test runs the adapter against the fake API server, records each (group, resource, verb) and
 * checks that every call is allowed here and every rule is used.
 *
 * - deployments: read, create or replace one API's Deployment, list and watch them (replicas and
 *   status), delete on `myelin delete`; `deployments/scale` patched by the autoscaler;
 * - pods: list and watch (replica states and addresses); `pods/log` read for `myelin logs` and a
 *   crashed replica's last lines;
 * - services: created once per API, deleted with it;
 * - secrets: the API's project token, created or replaced on deploy, deleted with the API.
 */
export const CONTROL_PLANE_RULES: readonly ControlPlaneRule[] = [
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  { apiGroups: [''], resources: ['services'], verbs: ['create', 'delete'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'update', 'delete'] },
];

/** Whether the rules allow `verb` on `resource` (`plural` or `plural/sub`) of `group` (`''` for core). */
export function rulesAllow(rules: readonly ControlPlaneRule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

export interface ControlPlaneOptions {
  readonly namespace: string;
  /** Image of the daemon (the replica image: it has the `myelin` CLI). Default `myelin/replica:<version>`. */
  readonly image?: string;
  readonly imagePullPolicy?: string;
  /** NATS the daemon and replicas use; default the bundled `nats://myelin-nats:4222` (then NATS is part of the output). */
  readonly nats?: string;
  /** Image pull secrets of the daemon's pod, passed on to the API pods (`--image-pull-secret`). */
  readonly imagePullSecrets?: readonly string[];
  /** ServiceAccount of the API pods (the daemon's `--pod-service-account`); the daemon itself runs as `myelin`. */
  readonly podServiceAccount?: string;
}

/**
 * The in-cluster control plane (`myelin render --daemon`), in apply order: the ServiceAccount
 * `myelin`, a Role with exactly `CONTROL_PLANE_RULES` and its RoleBinding, NATS with JetStream
 * (`myelin-nats`, unless `nats` points elsewhere), the daemon's Deployment
 * (`myelin up --target kubernetes --in-cluster …`), its control Service `myelin` (8889, where pods
 * fetch their project and the CLI deploys) and the gateway Service `myelin-gateway` (8888).
 */
export function controlPlaneManifests(o: ControlPlaneOptions): KubernetesObject[] {
  const ns = o.namespace;
  const image = o.image ?? DEFAULT_REPLICA_IMAGE;
  const pull = o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {};
  const bundledNats = o.nats === undefined;
  const natsUrl = o.nats ?? `nats://${NATS_NAME}:${NATS_PORT}`;
  const meta = (name: string, component: string) => ({ name, namespace: ns, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [COMPONENT_LABEL]: component } });

  const serviceAccount: V1ServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(CONTROL_PLANE_NAME, 'daemon') };
  const role: V1Role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(CONTROL_PLANE_NAME, 'daemon'),
    rules: CONTROL_PLANE_RULES.map((r): V1PolicyRule => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })),
  };
  const binding: V1RoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(CONTROL_PLANE_NAME, 'daemon'),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONTROL_PLANE_NAME },
    subjects: [{ kind: 'ServiceAccount', name: CONTROL_PLANE_NAME, namespace: ns }],
  };

  const daemonLabels = { [MANAGED_BY_LABEL]: MANAGED_BY, [COMPONENT_LABEL]: 'daemon' };
  const daemon: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(CONTROL_PLANE_NAME, 'daemon'),
    spec: {
      replicas: 1,
      // One daemon at a time: two would both drive the same Deployments.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: daemonLabels },
      template: {
        metadata: { labels: daemonLabels },
        spec: {
          serviceAccountName: CONTROL_PLANE_NAME,
          ...(o.imagePullSecrets && o.imagePullSecrets.length > 0 ? { imagePullSecrets: o.imagePullSecrets.map((name) => ({ name })) } : {}),
          containers: [
            {
              name: 'daemon',
              image,
              ...pull,
              command: [
                'myelin', 'up',
                '--target', 'kubernetes',
                '--in-cluster',
                '--host', '0.0.0.0',
                '--port', String(CONTROL_PORT),
                '--gateway-host', '0.0.0.0',
                '--gateway-port', String(DEFAULT_GATEWAY_PORT),
                '--nats', natsUrl,
                // API pods run the same image as the daemon.
                '--image', image,
                '--namespace', ns,
                '--state-dir', DAEMON_STATE_DIR,
                '--log-format', 'json',
                ...(o.imagePullSecrets ?? []).flatMap((s) => ['--image-pull-secret', s]),
                ...(o.podServiceAccount ? ['--pod-service-account', o.podServiceAccount] : []),
              ],
              ports: [
                { name: 'control', containerPort: CONTROL_PORT, protocol: 'TCP' },
                { name: 'gateway', containerPort: DEFAULT_GATEWAY_PORT, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/healthz', port: CONTROL_PORT }, periodSeconds: 2, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: '/healthz', port: CONTROL_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
              volumeMounts: [{ name: 'state', mountPath: DAEMON_VOLUME_DIR }],
            },
          ],
          volumes: [{ name: 'state', emptyDir: {} }],
        },
      },
    },
  };
  const service = (name: string, port: number, targetPort: number, portName: string): V1Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(name, 'daemon'),
    spec: { type: 'ClusterIP', selector: daemonLabels, ports: [{ name: portName, port, targetPort, protocol: 'TCP' }] },
  });

  const out: KubernetesObject[] = [serviceAccount, role, binding];
  if (bundledNats) out.push(...natsManifests(ns));
  out.push(daemon, service(CONTROL_PLANE_NAME, CONTROL_PORT, CONTROL_PORT, 'control'), service(GATEWAY_SERVICE_NAME, 8888, DEFAULT_GATEWAY_PORT, 'http'));
  return out;
}

/** NATS with JetStream (`nats:2 -js`): one pod, the client port 4222, monitoring on 8222. */
function natsManifests(namespace: string): [V1Deployment, V1Service] {
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY, [COMPONENT_LABEL]: 'nats' };
  const metadata = { name: NATS_NAME, namespace, labels };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'nats',
                image: NATS_IMAGE,
                args: ['-js', '-m', '8222'],
                ports: [
                  { name: 'client', containerPort: NATS_PORT, protocol: 'TCP' },
                  { name: 'monitor', containerPort: 8222, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/healthz', port: 8222 }, periodSeconds: 2 },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata,
      spec: { type: 'ClusterIP', selector: labels, ports: [{ name: 'client', port: NATS_PORT, targetPort: NATS_PORT, protocol: 'TCP' }] },
    },
  ];
}
