/**
 * An in-process fake of the Kubernetes API server, on 127.0.0.1 and a random port, for the
 * `kubernetes` orchestrator's tests (DESIGN.md "Test strategy", SG 9.4). It serves only what the
 * adapter and the kubectl checks use, and behaves like a real API server there:
 *
 * - discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, `/apis/rbac.authorization.k8s.io/v1` (legacy discovery; kubectl
 *   falls back to it when the aggregated form is not offered);
 * - apps/v1 deployments: create, get, list, replace (PUT, resourceVersion precondition), patch
 *   (merge, strategic-merge treated as merge, JSON patch), delete (garbage-collects its pods), and
 *   the `scale` subresource (get, replace, patch);
 * - core/v1 services: create, get, list, replace, delete;
 * - core/v1 secrets, configmaps, serviceaccounts and rbac.authorization.k8s.io/v1 roles and
 *   rolebindings: stored only (create, get, list, watch, replace, patch, delete), with a
 *   Secret's `stringData` folded into `data`;
 * - core/v1 pods: get, list, delete (graceful: `deletionTimestamp`, then gone), `log` (tail, follow,
 *   previous);
 * - list and watch with `labelSelector` and `fieldSelector`; `watch=true` streams JSON lines
 *   `{type, object}` (ADDED/MODIFIED/DELETED) resumable from a `resourceVersion` while it is still in
 *   the bounded history, else one `ERROR` event with a 410 `Expired` Status; one global, increasing
 *   resourceVersion; 404/409/410/415/422 answered with `Status` objects.
 *
 * A tiny Deployment controller creates pods for each Deployment (`<deploy>-<hash>-<rand>`, the
 * template's labels plus `pod-template-hash`) and rolls a changed template within maxSurge /
 * maxUnavailable the way the real controller does (scale the new set up to replicas + maxSurge,
 * scale old pods down while ready pods stay ≥ replicas − maxUnavailable, unready old pods first).
 * There is no kubelet: pods stay `Pending` (scheduled) until a test moves them with the hooks
 * (`markPodReady`, `markPodUnschedulable`, `markPodCrashLoop`, …), unless `autoReady` is set.
 *
 * Not modelled: ReplicaSet objects (pods point at a ReplicaSet owner that cannot be fetched),
 * namespaces as objects (every namespace exists), authentication, `limit`/`continue` paging (lists
 * are returned whole), server-side apply, protobuf, tables, OpenAPI documents (404).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  alreadyExists,
  applyPatch,
  badRequest,
  conflict,
  invalid,
  KubeStatusError,
  notFound,
  parseFieldSelector,
  parseLabelSelector,
  resolveIntOrPercent,
  selectorText,
  type KubeObject,
  type LabelSelector,
} from './fake-kube-objects.js';

export type { KubeObject } from './fake-kube-objects.js';

export interface FakeKubeApiOptions {
  /** New pods become Running and Ready at once, so rollouts progress without a test's help (default false). */
  readonly autoReady?: boolean;
  /** Watch events kept for resumption from a resourceVersion; older versions get 410 Expired (default 1000). */
  readonly historyLimit?: number;
  /** Pods being deleted stay `terminating` until `finishTermination` (default false: gone right after). */
  readonly holdTermination?: boolean;
}

/** One request the fake received (for assertions such as "scale sent a merge patch to /scale"). */
export interface FakeKubeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly contentType?: string;
  readonly body?: unknown;
}

export type Plural = 'pods' | 'services' | 'deployments' | 'secrets' | 'configmaps' | 'serviceaccounts' | 'roles' | 'rolebindings';

const RBAC_GROUP = 'rbac.authorization.k8s.io';
/** Kinds the fake only stores (create, get, list, watch, replace, patch, delete), with no behaviour of their own. */
const PLAIN_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] as const;

interface ResourceType {
  readonly plural: Plural;
  readonly group: '' | 'apps' | typeof RBAC_GROUP;
  readonly kind: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly verbs: readonly string[];
}

const RESOURCES: Readonly<Record<Plural, ResourceType>> = {
  pods: { plural: 'pods', group: '', kind: 'Pod', singular: 'pod', shortNames: ['po'], verbs: ['delete', 'get', 'list', 'watch'] },
  services: {
    plural: 'services',
    group: '',
    kind: 'Service',
    singular: 'service',
    shortNames: ['svc'],
    verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'],
  },
  deployments: {
    plural: 'deployments',
    group: 'apps',
    kind: 'Deployment',
    singular: 'deployment',
    shortNames: ['deploy'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
  },
  secrets: { plural: 'secrets', group: '', kind: 'Secret', singular: 'secret', shortNames: [], verbs: PLAIN_VERBS },
  configmaps: { plural: 'configmaps', group: '', kind: 'ConfigMap', singular: 'configmap', shortNames: ['cm'], verbs: PLAIN_VERBS },
  serviceaccounts: { plural: 'serviceaccounts', group: '', kind: 'ServiceAccount', singular: 'serviceaccount', shortNames: ['sa'], verbs: PLAIN_VERBS },
  roles: { plural: 'roles', group: RBAC_GROUP, kind: 'Role', singular: 'role', shortNames: [], verbs: PLAIN_VERBS },
  rolebindings: { plural: 'rolebindings', group: RBAC_GROUP, kind: 'RoleBinding', singular: 'rolebinding', shortNames: [], verbs: PLAIN_VERBS },
};

/**
 * The RBAC attributes of a request to the fake, as the API server's authorizer sees them: API group
 * (`''` for core), resource (`plural` or `plural/subresource`) and verb (`get`, `list`, `watch`,
 * `create`, `update`, `patch`, `delete`, `deletecollection`). Undefined for non-resource paths
 * (discovery, `/version`).
 */
export function requestAttributes(r: Pick<FakeKubeRequest, 'method' | 'path' | 'query'>): { group: string; resource: string; verb: string; namespace?: string } | undefined {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?\/?$/.exec(r.path);
  if (!m) return undefined;
  const [, group = '', namespace, plural, name, sub] = m;
  const watch = /(?:^|[?&])watch=(?:true|1)(?:&|$)/.test(r.query);
  const verb =
    r.method === 'GET' ? (name === undefined ? (watch ? 'watch' : 'list') : 'get')
    : r.method === 'POST' ? 'create'
    : r.method === 'PUT' ? 'update'
    : r.method === 'PATCH' ? 'patch'
    : r.method === 'DELETE' ? (name === undefined ? 'deletecollection' : 'delete')
    : r.method.toLowerCase();
  return { group, resource: sub ? `${plural}/${sub}` : plural, verb, ...(namespace ? { namespace } : {}) };
}

const apiVersionOf = (t: ResourceType): string => (t.group ? `${t.group}/v1` : 'v1');

interface StoredEvent {
  readonly rv: number;
  readonly plural: Plural;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
  /** The object before a MODIFIED/DELETED, to turn label changes into ADDED/DELETED for a filtered watch. */
  readonly old?: KubeObject;
}

interface Watcher {
  readonly plural: Plural;
  readonly namespace?: string;
  readonly labels: LabelSelector;
  readonly fields: (o: KubeObject) => boolean;
  readonly res: ServerResponse;
  /** Events at or below this resourceVersion were already sent (or predate the watch). */
  readonly sinceRv: number;
}

interface LogFollower {
  readonly key: string;
  readonly res: ServerResponse;
}

const SAFE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** Encodes bytes into Kubernetes' "safe" alphabet (no vowels, no confusable digits), as pod names use. */
function safeString(bytes: Uint8Array, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += SAFE_CHARS[bytes[i % bytes.length] % SAFE_CHARS.length];
  return s;
}

/** RFC 3339 with second precision, as the API server writes timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The fake API server. Create with `FakeKubeApi.start()`, dispose with `close()` or `await using`. */
export class FakeKubeApi {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: FakeKubeRequest[] = [];

  private readonly store = Object.fromEntries(Object.keys(RESOURCES).map((k) => [k, new Map<string, KubeObject>()])) as Record<Plural, Map<string, KubeObject>>;
  private rv = 0;
  private readonly history: StoredEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly logs = new Map<string, { current: string[]; previous: string[] }>();
  private readonly logFollowers = new Set<LogFollower>();
  /** Pod key (`ns/name`) → owning Deployment key (`ns/name`); stands in for the ReplicaSet level. */
  private readonly podOwner = new Map<string, string>();
  private readonly sockets = new Set<Socket>();
  private nextPodIp = 2;
  private nextClusterIp = 10;
  private autoReady: boolean;
  private readonly historyLimit: number;
  private readonly holdTermination: boolean;
  private reconciling = false;
  private readonly dirty = new Set<string>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    port: number,
    options: FakeKubeApiOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.autoReady = options.autoReady ?? false;
    this.historyLimit = options.historyLimit ?? 1000;
    this.holdTermination = options.holdTermination ?? false;
  }

  /** Starts a fake on 127.0.0.1 and a random free port. */
  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('fake kube api: no port');
    const fake = new FakeKubeApi(server, address.port, options);
    server.on('connection', (s) => {
      fake.sockets.add(s);
      s.on('close', () => fake.sockets.delete(s));
    });
    server.on('request', (req, res) => void fake.handle(req, res));
    return fake;
  }

  /** Ends every watch and log stream, closes every connection and the listening socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.res.end();
    for (const f of this.logFollowers) f.res.end();
    this.watchers.clear();
    this.logFollowers.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A kubeconfig (YAML) for this fake: one cluster, one context, no credentials. */
  kubeconfig(namespace = 'default'): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      // client-node 1.x refuses plain http unless this is set; kubectl ignores it for http.
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: fake',
      '  user: {}',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: fake',
      `    namespace: ${namespace}`,
      'current-context: fake',
      '',
    ].join('\n');
  }

  // -------------------------------------------------------------------------------------------
  // Inspection and test hooks

  /** A copy of the stored object, or undefined. */
  get(plural: Plural, name: string, namespace = 'default'): KubeObject | undefined {
    const o = this.store[plural].get(`${namespace}/${name}`);
    return o ? structuredClone(o) : undefined;
  }

  /** Copies of the stored objects of a kind (all namespaces unless given), sorted by name. */
  list(plural: Plural, labelSelector = '', namespace?: string): KubeObject[] {
    const sel = parseLabelSelector(labelSelector);
    return [...this.store[plural].values()]
      .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && sel.matches(o.metadata.labels))
      .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))
      .map((o) => structuredClone(o));
  }

  /** Number of open watch connections. */
  openWatches(): number {
    return this.watchers.size;
  }

  /** The latest resourceVersion handed out. */
  resourceVersion(): number {
    return this.rv;
  }

  setAutoReady(on: boolean): void {
    this.autoReady = on;
  }

  /**
   * Closes every open watch: `end` finishes the response as an API server's watch timeout does,
   * `destroy` cuts the TCP connection. Returns how many were closed.
   */
  dropWatches(mode: 'end' | 'destroy' = 'end'): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      if (mode === 'end') w.res.end();
      else w.res.socket?.destroy();
    }
    return n;
  }

  /** Forgets the watch history, so resuming from any earlier resourceVersion gets 410 Expired. */
  compactHistory(): void {
    this.history.length = 0;
  }

  /** Pod is Running; Ready when `ready` (default true), with a pod IP. */
  markPodRunning(name: string, options: { readonly ready?: boolean; readonly namespace?: string } = {}): void {
    const ready = options.ready ?? true;
    this.updatePod(name, options.namespace, (p) => {
      const now = timestamp();
      p.spec.nodeName = 'fake-node';
      p.status = {
        phase: 'Running',
        hostIP: '10.0.0.1',
        podIP: p.status?.podIP ?? this.allocatePodIp(),
        startTime: p.status?.startTime ?? now,
        qosClass: p.status?.qosClass ?? 'Burstable',
        conditions: [
          { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now },
          { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: now },
          { type: 'ContainersReady', status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now },
          { type: 'Ready', status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now },
        ],
        containerStatuses: (p.spec.containers as KubeObject[]).map((c) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          containerID: `containerd://${randomUUID().replace(/-/g, '')}`,
          ready,
          started: true,
          restartCount: this.restartCount(p, c.name),
          state: { running: { startedAt: now } },
        })),
      };
      p.status.podIPs = [{ ip: p.status.podIP }];
    });
  }

  markPodReady(name: string, namespace?: string): void {
    this.markPodRunning(name, { ready: true, namespace });
  }

  /** Pod cannot be placed: Pending with PodScheduled=False, reason Unschedulable. */
  markPodUnschedulable(name: string, message = '0/1 nodes are available: 1 Insufficient cpu.', namespace?: string): void {
    this.updatePod(name, namespace, (p) => {
      delete p.spec.nodeName;
      p.status = {
        phase: 'Pending',
        qosClass: p.status?.qosClass ?? 'Burstable',
        conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: timestamp() }],
      };
    });
  }

  /** The container exited with `exitCode` and is in back-off: Running, not Ready, waiting `CrashLoopBackOff`; its log becomes the previous log. */
  markPodCrashLoop(name: string, options: { readonly exitCode?: number; readonly namespace?: string } = {}): void {
    const key = `${options.namespace ?? 'default'}/${name}`;
    const log = this.logs.get(key);
    if (log) {
      log.previous = log.current;
      log.current = [];
    }
    this.updatePod(name, options.namespace, (p) => {
      const now = timestamp();
      p.spec.nodeName = 'fake-node';
      p.status = {
        phase: 'Running',
        hostIP: '10.0.0.1',
        podIP: p.status?.podIP ?? this.allocatePodIp(),
        startTime: p.status?.startTime ?? now,
        qosClass: p.status?.qosClass ?? 'Burstable',
        conditions: [
          { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now },
          { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: now },
          { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', lastProbeTime: null, lastTransitionTime: now },
          { type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastProbeTime: null, lastTransitionTime: now },
        ],
        containerStatuses: (p.spec.containers as KubeObject[]).map((c) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          started: false,
          restartCount: this.restartCount(p, c.name) + 1,
          state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${c.name} pod=${name}` } },
          lastState: { terminated: { exitCode: options.exitCode ?? 1, reason: 'Error', startedAt: now, finishedAt: now } },
        })),
      };
    });
  }

  /** The pod's containers terminated and it will not restart (phase Failed). */
  markPodFailed(name: string, namespace?: string): void {
    this.updatePod(name, namespace, (p) => {
      const now = timestamp();
      p.status = {
        ...p.status,
        phase: 'Failed',
        conditions: [{ type: 'Ready', status: 'False', reason: 'PodFailed', lastProbeTime: null, lastTransitionTime: now }],
        containerStatuses: (p.spec.containers as KubeObject[]).map((c) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          started: false,
          restartCount: this.restartCount(p, c.name),
          state: { terminated: { exitCode: 1, reason: 'Error', startedAt: now, finishedAt: now } },
        })),
      };
    });
  }

  /** Deletes a pod as an eviction would (graceful); its Deployment creates a replacement. */
  deletePod(name: string, namespace = 'default'): void {
    const p = this.store.pods.get(`${namespace}/${name}`);
    if (!p) throw new Error(`fake kube api: no pod ${namespace}/${name}`);
    this.terminatePod(p);
    this.flush();
  }

  /** Removes a pod held in `terminating` (with `holdTermination`). */
  finishTermination(name: string, namespace = 'default'): void {
    const p = this.store.pods.get(`${namespace}/${name}`);
    if (!p) throw new Error(`fake kube api: no pod ${namespace}/${name}`);
    this.removePod(p);
    this.flush();
  }

  /** Appends lines to a pod's (current) container log; followers of the log receive them. */
  appendPodLog(name: string, lines: readonly string[], namespace = 'default'): void {
    const key = `${namespace}/${name}`;
    if (!this.store.pods.has(key)) throw new Error(`fake kube api: no pod ${key}`);
    const log = this.logOf(key);
    log.current.push(...lines);
    for (const f of this.logFollowers) if (f.key === key) f.res.write(lines.map((l) => `${l}\n`).join(''));
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    try {
      const raw = await readBody(req);
      let body: unknown;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw badRequest('the request body is not valid JSON (the fake speaks JSON only)');
        }
      }
      this.requests.push({ method, path: url.pathname, query: url.search, contentType: req.headers['content-type'], body });
      this.route(method, url, req, res, body);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof KubeStatusError) sendJson(res, err.code, err.toStatus());
      else sendJson(res, 500, new KubeStatusError(500, 'InternalError', String((err as Error)?.stack ?? err)).toStatus());
    }
  }

  private route(method: string, url: URL, req: IncomingMessage, res: ServerResponse, body: unknown): void {
    const path = url.pathname.replace(/\/+$/, '');
    if (method === 'GET') {
      const discovery = this.discovery(path);
      if (discovery) return sendJson(res, 200, discovery);
    }
    const m =
      /^\/(?:api\/v1|apis\/(apps|rbac\.authorization\.k8s\.io)\/v1)(?:\/namespaces\/([^/]+))?\/(pods|services|deployments|secrets|configmaps|serviceaccounts|roles|rolebindings)(?:\/([^/]+))?(?:\/(scale|log))?$/.exec(path);
    if (!m) throw new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource');
    const [, group = '', namespace, plural, name, sub] = m as unknown as [string, string | undefined, string | undefined, Plural, string | undefined, string | undefined];
    const type = RESOURCES[plural];
    if (type.group !== group) throw new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub === 'scale' && plural !== 'deployments') throw new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub === 'log' && plural !== 'pods') throw new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource');
    const q = url.searchParams;

    if (name === undefined) {
      if (method === 'GET') {
        const watch = q.get('watch');
        if (watch === 'true' || watch === '1') return this.watch(res, plural, namespace, q);
        return sendJson(res, 200, this.listBody(plural, namespace, q));
      }
      if (method === 'POST' && namespace) return sendJson(res, 201, this.create(plural, namespace, body as KubeObject));
      throw methodNotAllowed();
    }
    if (!namespace) throw new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub === 'log' && method === 'GET') return this.podLog(res, namespace, name, q);
    if (sub === 'scale') {
      if (method === 'GET') return sendJson(res, 200, this.scaleOf(this.mustGet('deployments', namespace, name)));
      if (method === 'PUT') return sendJson(res, 200, this.putScale(namespace, name, body as KubeObject));
      if (method === 'PATCH') {
        const scale = applyPatch(this.scaleOf(this.mustGet('deployments', namespace, name)), String(req.headers['content-type'] ?? ''), body);
        return sendJson(res, 200, this.putScale(namespace, name, scale));
      }
      throw methodNotAllowed();
    }
    switch (method) {
      case 'GET':
        return sendJson(res, 200, this.mustGet(plural, namespace, name));
      case 'PUT':
        return sendJson(res, 200, this.replace(plural, namespace, name, body as KubeObject));
      case 'PATCH': {
        if (plural === 'pods') throw methodNotAllowed();
        const current = this.mustGet(plural, namespace, name);
        const patched = applyPatch(current, String(req.headers['content-type'] ?? ''), body);
        return sendJson(res, 200, this.replace(plural, namespace, name, patched));
      }
      case 'DELETE':
        // DeleteOptions come in the body (kubectl) or as query parameters (generated clients).
        return sendJson(res, 200, this.delete(plural, namespace, name, { ...Object.fromEntries(q), ...((body ?? {}) as KubeObject) }));
      default:
        throw methodNotAllowed();
    }
  }

  private discovery(path: string): KubeObject | undefined {
    const resourceList = (groupVersion: string, types: readonly ResourceType[]): KubeObject => ({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion,
      resources: types.flatMap((t) => [
        { name: t.plural, singularName: t.singular, namespaced: true, kind: t.kind, verbs: t.verbs, shortNames: t.shortNames, categories: ['all'] },
        ...(t.plural === 'deployments'
          ? [{ name: 'deployments/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] }]
          : []),
        ...(t.plural === 'pods' ? [{ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] }] : []),
      ]),
    });
    switch (path) {
      case '/version':
        return {
          major: '1',
          minor: '32',
          gitVersion: 'v1.32.0-myelin-fake',
          gitCommit: '0000000000000000000000000000000000000000',
          gitTreeState: 'clean',
          buildDate: '2025-01-01T00:00:00Z',
          goVersion: 'go1.23.0',
          compiler: 'gc',
          platform: 'linux/amd64',
        };
      case '/api':
        return {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace('http://', '') }],
        };
      case '/apis':
        return {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: [
            { name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } },
            { name: RBAC_GROUP, versions: [{ groupVersion: `${RBAC_GROUP}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${RBAC_GROUP}/v1`, version: 'v1' } },
          ],
        };
      case '/api/v1':
        return resourceList('v1', [RESOURCES.pods, RESOURCES.services, RESOURCES.secrets, RESOURCES.configmaps, RESOURCES.serviceaccounts]);
      case '/apis/apps/v1':
        return resourceList('apps/v1', [RESOURCES.deployments]);
      case `/apis/${RBAC_GROUP}/v1`:
        return resourceList(`${RBAC_GROUP}/v1`, [RESOURCES.roles, RESOURCES.rolebindings]);
      default:
        return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Store

  private mustGet(plural: Plural, namespace: string, name: string): KubeObject {
    const o = this.store[plural].get(`${namespace}/${name}`);
    if (!o) throw notFound(plural, RESOURCES[plural].group, name);
    return structuredClone(o);
  }

  private listBody(plural: Plural, namespace: string | undefined, q: URLSearchParams): KubeObject {
    const type = RESOURCES[plural];
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    const items = [...this.store[plural].values()]
      .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && labels.matches(o.metadata.labels) && fields(o))
      .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))
      // Items of a typed list carry no kind/apiVersion on a real API server; clients take them from the list.
      .map(({ kind: _k, apiVersion: _a, ...rest }) => structuredClone(rest));
    return { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(this.rv) }, items };
  }

  /** Stores a change under the next resourceVersion and tells the watches. */
  private commit(plural: Plural, type: StoredEvent['type'], obj: KubeObject, old?: KubeObject): KubeObject {
    const rv = ++this.rv;
    obj.metadata.resourceVersion = String(rv);
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const typed = { kind: RESOURCES[plural].kind, apiVersion: apiVersionOf(RESOURCES[plural]), ...obj };
    if (type === 'DELETED') this.store[plural].delete(key);
    else this.store[plural].set(key, typed);
    const ev: StoredEvent = { rv, plural, type, object: structuredClone(typed), old: old && structuredClone(old) };
    this.history.push(ev);
    if (this.history.length > this.historyLimit) this.history.shift();
    for (const w of this.watchers) this.deliver(w, ev);
    return structuredClone(typed);
  }

  private create(plural: Plural, namespace: string, body: KubeObject | undefined): KubeObject {
    const type = RESOURCES[plural];
    if (!body || typeof body !== 'object') throw badRequest('missing body');
    if (body.kind !== undefined && body.kind !== type.kind) throw badRequest(`the kind ${body.kind} does not match ${type.kind}`);
    const obj = structuredClone(body);
    obj.metadata ??= {};
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${safeString(randomBytes(5), 5)}`;
    const name = String(obj.metadata.name ?? '');
    if (!name) throw invalid(type.kind, '', 'metadata.name: Required value: name or generateName is required');
    if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) {
      throw invalid(type.kind, name, `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`);
    }
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (this.store[plural].has(`${namespace}/${name}`)) throw alreadyExists(plural, type.group, name);
    obj.kind = type.kind;
    obj.apiVersion = apiVersionOf(type);
    obj.metadata = { ...obj.metadata, namespace, uid: randomUUID(), creationTimestamp: timestamp() };
    delete obj.metadata.resourceVersion;
    if (plural === 'deployments') {
      this.defaultAndValidateDeployment(obj);
      obj.metadata.generation = 1;
      obj.status = {};
    } else if (plural === 'services') {
      this.defaultService(obj);
    } else if (plural === 'pods') {
      throw methodNotAllowed();
    } else {
      this.defaultPlain(plural, obj);
    }
    const out = this.commit(plural, 'ADDED', obj);
    if (plural === 'deployments') {
      this.dirty.add(`${namespace}/${name}`);
      this.flush();
      return this.mustGet('deployments', namespace, name);
    }
    return out;
  }

  private replace(plural: Plural, namespace: string, name: string, body: KubeObject | undefined): KubeObject {
    const type = RESOURCES[plural];
    if (plural === 'pods') throw methodNotAllowed();
    if (!body || typeof body !== 'object') throw badRequest('missing body');
    const current = this.mustGet(plural, namespace, name);
    if (body.metadata?.name !== undefined && body.metadata.name !== name) {
      throw badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
    }
    const rv = body.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '' && String(rv) !== current.metadata.resourceVersion) throw conflict(plural, type.group, name);
    const obj = structuredClone(body);
    obj.kind = type.kind;
    obj.apiVersion = apiVersionOf(type);
    // Identity and server-owned fields come from the stored object, whatever the client sent.
    obj.metadata = {
      ...obj.metadata,
      name,
      namespace,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
    };
    if (current.metadata.deletionTimestamp) obj.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
    if (plural === 'deployments') {
      this.defaultAndValidateDeployment(obj);
      if (canonicalJson(obj.spec.selector) !== canonicalJson(current.spec.selector)) {
        throw invalid('Deployment', name, `spec.selector: Invalid value: ${JSON.stringify(obj.spec.selector)}: field is immutable`);
      }
      obj.status = current.status;
      obj.metadata.generation = (current.metadata.generation ?? 1) + (canonicalJson(obj.spec) === canonicalJson(current.spec) ? 0 : 1);
    } else if (plural === 'services') {
      obj.spec = { ...obj.spec, clusterIP: current.spec.clusterIP, clusterIPs: current.spec.clusterIPs };
      this.defaultService(obj);
      obj.status = current.status;
    } else {
      this.defaultPlain(plural, obj);
    }
    const out = this.commit(plural, 'MODIFIED', obj, current);
    if (plural === 'deployments') {
      this.dirty.add(`${namespace}/${name}`);
      this.flush();
      return this.mustGet('deployments', namespace, name);
    }
    return out;
  }

  private delete(plural: Plural, namespace: string, name: string, options: KubeObject): KubeObject {
    const type = RESOURCES[plural];
    const current = this.mustGet(plural, namespace, name);
    const pre = options.preconditions;
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) throw conflict(plural, type.group, name);
    if (pre?.uid && pre.uid !== current.metadata.uid) throw conflict(plural, type.group, name);
    if (plural === 'pods') {
      const p = this.store.pods.get(`${namespace}/${name}`)!;
      const out = this.terminatePod(p);
      this.flush();
      return out;
    }
    this.commit(plural, 'DELETED', structuredClone(current), current);
    if (plural === 'deployments') {
      const key = `${namespace}/${name}`;
      const orphan = options.propagationPolicy === 'Orphan' || String(options.orphanDependents) === 'true';
      for (const [podKey, owner] of [...this.podOwner]) {
        if (owner !== key) continue;
        if (orphan) this.podOwner.delete(podKey);
        else {
          const p = this.store.pods.get(podKey);
          if (p) this.terminatePod(p);
        }
      }
      this.flush();
    }
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, group: type.group || undefined, kind: plural, uid: current.metadata.uid },
    };
  }

  private defaultAndValidateDeployment(d: KubeObject): void {
    const name = d.metadata.name;
    d.spec ??= {};
    const s = d.spec;
    s.replicas ??= 1;
    if (!Number.isInteger(s.replicas) || s.replicas < 0) throw invalid('Deployment', name, `spec.replicas: Invalid value: ${s.replicas}: must be greater than or equal to 0`);
    s.revisionHistoryLimit ??= 10;
    s.progressDeadlineSeconds ??= 600;
    s.strategy ??= {};
    s.strategy.type ??= 'RollingUpdate';
    if (s.strategy.type === 'RollingUpdate') {
      s.strategy.rollingUpdate = { maxSurge: '25%', maxUnavailable: '25%', ...s.strategy.rollingUpdate };
      const surge = resolveIntOrPercent(s.strategy.rollingUpdate.maxSurge, 100, true, 25);
      const unavailable = resolveIntOrPercent(s.strategy.rollingUpdate.maxUnavailable, 100, false, 25);
      if (surge === 0 && unavailable === 0) {
        throw invalid('Deployment', name, 'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0');
      }
    }
    if (!s.selector || (!s.selector.matchLabels && !s.selector.matchExpressions)) throw invalid('Deployment', name, 'spec.selector: Required value');
    const labels = s.template?.metadata?.labels ?? {};
    if (!parseLabelSelector(selectorText(s.selector)).matches(labels)) {
      throw invalid('Deployment', name, `spec.template.metadata.labels: Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``);
    }
    const containers = s.template?.spec?.containers;
    if (!Array.isArray(containers) || containers.length === 0) throw invalid('Deployment', name, 'spec.template.spec.containers: Required value');
    for (const c of containers) {
      if (!c.name || !c.image) throw invalid('Deployment', name, 'spec.template.spec.containers[0]: name and image are required');
    }
    s.template.spec.restartPolicy ??= 'Always';
    s.template.spec.terminationGracePeriodSeconds ??= 30;
    s.template.spec.dnsPolicy ??= 'ClusterFirst';
  }

  /** Secrets: `stringData` folded into base64 `data`, `type` Opaque; RoleBindings need a `roleRef`; ConfigMap keys are unique across `data` and `binaryData`. */
  private defaultPlain(plural: Plural, obj: KubeObject): void {
    const name = obj.metadata.name;
    if (plural === 'secrets') {
      obj.type ??= 'Opaque';
      if (obj.stringData) {
        obj.data = { ...obj.data };
        for (const [k, v] of Object.entries(obj.stringData as Record<string, string>)) obj.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        delete obj.stringData;
      }
    } else if (plural === 'configmaps') {
      for (const k of Object.keys(obj.binaryData ?? {})) {
        if (obj.data && k in obj.data) throw invalid('ConfigMap', name, `data[${k}]: Invalid value: "${k}": duplicate of key present in binaryData`);
      }
    } else if (plural === 'rolebindings') {
      if (!obj.roleRef?.name || !obj.roleRef?.kind) throw invalid('RoleBinding', name, 'roleRef: Required value');
    }
  }

  private defaultService(svc: KubeObject): void {
    svc.spec ??= {};
    svc.spec.type ??= 'ClusterIP';
    svc.spec.sessionAffinity ??= 'None';
    if (!svc.spec.clusterIP) {
      const ip = `10.96.0.${this.nextClusterIp++}`;
      svc.spec.clusterIP = ip;
      svc.spec.clusterIPs = [ip];
    }
    svc.spec.ports = (svc.spec.ports ?? []).map((p: KubeObject) => ({ protocol: 'TCP', targetPort: p.port, ...p }));
    svc.status ??= { loadBalancer: {} };
  }

  private scaleOf(d: KubeObject): KubeObject {
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: d.metadata.name,
        namespace: d.metadata.namespace,
        uid: d.metadata.uid,
        resourceVersion: d.metadata.resourceVersion,
        creationTimestamp: d.metadata.creationTimestamp,
      },
      spec: { replicas: d.spec.replicas },
      status: { replicas: d.status?.replicas ?? 0, selector: selectorText(d.spec.selector) },
    };
  }

  private putScale(namespace: string, name: string, scale: KubeObject | undefined): KubeObject {
    const current = this.mustGet('deployments', namespace, name);
    const replicas = scale?.spec?.replicas;
    if (!Number.isInteger(replicas) || replicas < 0) throw invalid('Scale', name, `spec.replicas: Invalid value: ${replicas}: must be greater than or equal to 0`);
    const rv = scale?.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '' && String(rv) !== current.metadata.resourceVersion) throw conflict('deployments', 'apps', name);
    const next = structuredClone(current);
    next.spec.replicas = replicas;
    if (replicas !== current.spec.replicas) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    this.commit('deployments', 'MODIFIED', next, current);
    this.dirty.add(`${namespace}/${name}`);
    this.flush();
    return this.scaleOf(this.mustGet('deployments', namespace, name));
  }

  // -------------------------------------------------------------------------------------------
  // Watch

  private watch(res: ServerResponse, plural: Plural, namespace: string | undefined, q: URLSearchParams): void {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    const rvParam = q.get('resourceVersion');
    const fromNow = rvParam === null || rvParam === '' || rvParam === '0';
    const since = fromNow ? this.rv : Number(rvParam);
    if (!Number.isInteger(since)) throw badRequest(`invalid resource version ${JSON.stringify(rvParam)}`);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const matches = (o: KubeObject): boolean => (namespace === undefined || o.metadata.namespace === namespace) && labels.matches(o.metadata.labels) && fields(o);
    if (fromNow) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes (as the API server does).
      for (const o of [...this.store[plural].values()].filter(matches)) writeEvent(res, 'ADDED', o);
    } else {
      const oldest = this.history.length ? this.history[0].rv : this.rv + 1;
      if (since < this.rv && since < oldest - 1) {
        writeEvent(res, 'ERROR', new KubeStatusError(410, 'Expired', `too old resource version: ${since} (${oldest - 1})`).toStatus());
        res.end();
        return;
      }
    }
    const w: Watcher = { plural, namespace, labels, fields, res, sinceRv: since };
    for (const ev of this.history) this.deliver(w, ev);
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) {
      const t = setTimeout(() => {
        this.watchers.delete(w);
        res.end();
      }, timeout * 1000);
      res.on('close', () => clearTimeout(t));
    }
  }

  private deliver(w: Watcher, ev: StoredEvent): void {
    if (ev.plural !== w.plural || ev.rv <= w.sinceRv) return;
    const match = (o: KubeObject | undefined): boolean =>
      !!o && (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.labels.matches(o.metadata.labels) && w.fields(o);
    const now = match(ev.object);
    const before = ev.type !== 'ADDED' && match(ev.old);
    let type: StoredEvent['type'] | undefined;
    if (ev.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else if (ev.type === 'DELETED') type = now || before ? 'DELETED' : undefined;
    else if (now && before) type = 'MODIFIED';
    else if (now) type = 'ADDED';
    else if (before) type = 'DELETED';
    if (type) writeEvent(w.res, type, ev.object);
  }

  // -------------------------------------------------------------------------------------------
  // Pods and logs

  private logOf(key: string): { current: string[]; previous: string[] } {
    let l = this.logs.get(key);
    if (!l) this.logs.set(key, (l = { current: [], previous: [] }));
    return l;
  }

  private podLog(res: ServerResponse, namespace: string, name: string, q: URLSearchParams): void {
    const key = `${namespace}/${name}`;
    const pod = this.mustGet('pods', namespace, name);
    const containers = (pod.spec.containers as KubeObject[]).map((c) => String(c.name));
    const container = q.get('container');
    if (container && !containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    if (!container && containers.length > 1) {
      throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`);
    }
    const log = this.logOf(key);
    const previous = q.get('previous') === 'true';
    if (previous && !(pod.status?.containerStatuses ?? []).some((s: KubeObject) => s.restartCount > 0)) {
      throw badRequest(`previous terminated container "${container ?? containers[0]}" in pod "${name}" not found`);
    }
    if (!previous && pod.status?.phase === 'Pending') {
      throw badRequest(`container "${container ?? containers[0]}" in pod "${name}" is waiting to start: ContainerCreating`);
    }
    const lines = previous ? log.previous : log.current;
    const tail = q.get('tailLines');
    const shown = tail !== null ? lines.slice(Math.max(0, lines.length - Number(tail))) : lines;
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write(shown.map((l) => `${l}\n`).join(''));
    if (q.get('follow') === 'true' && !previous) {
      const f: LogFollower = { key, res };
      this.logFollowers.add(f);
      res.on('close', () => this.logFollowers.delete(f));
      return;
    }
    res.end();
  }

  private allocatePodIp(): string {
    const n = this.nextPodIp++;
    return `10.244.${Math.floor(n / 250)}.${n % 250}`;
  }

  private restartCount(p: KubeObject, container: string): number {
    return (p.status?.containerStatuses ?? []).find((s: KubeObject) => s.name === container)?.restartCount ?? 0;
  }

  private updatePod(name: string, namespace: string | undefined, change: (p: KubeObject) => void): void {
    const key = `${namespace ?? 'default'}/${name}`;
    const current = this.store.pods.get(key);
    if (!current) throw new Error(`fake kube api: no pod ${key}`);
    const next = structuredClone(current);
    change(next);
    this.commit('pods', 'MODIFIED', next, current);
    const owner = this.podOwner.get(key);
    if (owner) this.dirty.add(owner);
    this.flush();
  }

  /** Graceful deletion: sets `deletionTimestamp` (MODIFIED); the pod is removed right after unless `holdTermination`. */
  private terminatePod(p: KubeObject): KubeObject {
    if (p.metadata.deletionTimestamp) return structuredClone(p);
    const next = structuredClone(p);
    next.metadata.deletionTimestamp = timestamp();
    next.metadata.deletionGracePeriodSeconds = p.spec.terminationGracePeriodSeconds ?? 30;
    const out = this.commit('pods', 'MODIFIED', next, p);
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    // A terminating pod no longer counts: its Deployment may need a replacement.
    const owner = this.podOwner.get(key);
    if (owner) this.dirty.add(owner);
    if (!this.holdTermination) {
      setImmediate(() => {
        const still = this.store.pods.get(key);
        if (still && !this.closed) {
          this.removePod(still);
          this.flush();
        }
      });
    }
    return out;
  }

  private removePod(p: KubeObject): void {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    this.commit('pods', 'DELETED', structuredClone(p), p);
    for (const f of [...this.logFollowers]) {
      if (f.key === key) {
        this.logFollowers.delete(f);
        f.res.end();
      }
    }
    this.logs.delete(key);
    const owner = this.podOwner.get(key);
    this.podOwner.delete(key);
    if (owner) this.dirty.add(owner);
  }

  // -------------------------------------------------------------------------------------------
  // The Deployment controller

  /** Reconciles every dirty Deployment until nothing changes (synchronously, so a response reflects its effects). */
  private flush(): void {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      for (let guard = 0; this.dirty.size > 0; guard++) {
        if (guard > 1000) throw new Error('fake kube api: deployment controller does not settle');
        const [key] = this.dirty;
        this.dirty.delete(key);
        this.reconcile(key);
      }
    } finally {
      this.reconciling = false;
    }
  }

  private ownedPods(key: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const [podKey, owner] of this.podOwner) {
      const p = this.store.pods.get(podKey);
      if (owner === key && p) out.push(p);
    }
    return out;
  }

  private reconcile(key: string): void {
    const d = this.store.deployments.get(key);
    if (!d) return;
    const isReady = (p: KubeObject): boolean => (p.status?.conditions ?? []).some((c: KubeObject) => c.type === 'Ready' && c.status === 'True');
    const hash = templateHash(d.spec.template);
    const live = (): KubeObject[] => this.ownedPods(key).filter((p) => !p.metadata.deletionTimestamp);
    const current = (): KubeObject[] => live().filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const old = (): KubeObject[] => live().filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    const replicas: number = d.spec.replicas;
    // Pods to remove first: not ready, then the youngest (the ReplicaSet controller's order, simplified).
    const byRemovalOrder = (pods: KubeObject[]): KubeObject[] =>
      [...pods].sort((a, b) => Number(isReady(a)) - Number(isReady(b)) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)) || String(b.metadata.name).localeCompare(String(a.metadata.name)));

    if (!d.spec.paused) {
      if (d.spec.strategy?.type === 'Recreate') {
        for (const p of old()) this.terminatePod(p);
        const anyOld = this.ownedPods(key).some((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
        if (!anyOld) this.scaleTo(d, hash, current(), replicas, byRemovalOrder);
      } else {
        const ru = d.spec.strategy?.rollingUpdate ?? {};
        const surge = resolveIntOrPercent(ru.maxSurge, replicas, true, Math.ceil(replicas * 0.25));
        let unavailable = resolveIntOrPercent(ru.maxUnavailable, replicas, false, Math.floor(replicas * 0.25));
        if (surge === 0 && unavailable === 0) unavailable = 1;
        // New pods: up to replicas, and all pods up to replicas + maxSurge while old ones remain.
        const cur = current();
        if (cur.length > replicas) this.scaleTo(d, hash, cur, replicas, byRemovalOrder);
        else if (cur.length < replicas) {
          const room = old().length === 0 ? replicas - cur.length : Math.min(replicas + surge - live().length, replicas - cur.length);
          if (room > 0) this.scaleTo(d, hash, cur, cur.length + room, byRemovalOrder);
        }
        // Old pods: unready ones first, then ready ones while ready pods stay ≥ replicas − maxUnavailable.
        const minAvailable = replicas - unavailable;
        const newUnavailable = current().filter((p) => !isReady(p)).length;
        let maxScaledDown = live().length - minAvailable - newUnavailable;
        for (const p of byRemovalOrder(old().filter((x) => !isReady(x)))) {
          if (maxScaledDown <= 0) break;
          this.terminatePod(p);
          maxScaledDown--;
        }
        let available = live().filter(isReady).length;
        for (const p of byRemovalOrder(old().filter(isReady))) {
          if (available <= minAvailable) break;
          this.terminatePod(p);
          available--;
        }
      }
    }
    this.updateDeploymentStatus(key, hash, isReady);
  }

  private scaleTo(d: KubeObject, hash: string, pods: KubeObject[], want: number, order: (p: KubeObject[]) => KubeObject[]): void {
    if (pods.length > want) {
      for (const p of order(pods).slice(0, pods.length - want)) this.terminatePod(p);
      return;
    }
    for (let i = pods.length; i < want; i++) this.createPod(d, hash);
  }

  private createPod(d: KubeObject, hash: string): void {
    const ns = d.metadata.namespace;
    let name: string;
    do name = `${d.metadata.name}-${hash}-${safeString(randomBytes(5), 5)}`;
    while (this.store.pods.has(`${ns}/${name}`));
    const tpl = d.spec.template;
    const pod: KubeObject = {
      metadata: {
        name,
        generateName: `${d.metadata.name}-${hash}-`,
        namespace: ns,
        uid: randomUUID(),
        creationTimestamp: timestamp(),
        labels: { ...(tpl.metadata?.labels ?? {}), 'pod-template-hash': hash },
        ...(tpl.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${d.metadata.name}-${hash}`, uid: uidFor(`${d.metadata.uid}/${hash}`), controller: true, blockOwnerDeletion: true },
        ],
      },
      spec: structuredClone(tpl.spec),
      status: {
        phase: 'Pending',
        qosClass: 'Burstable',
        conditions: [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: timestamp() }],
      },
    };
    pod.spec.nodeName = 'fake-node';
    this.podOwner.set(`${ns}/${name}`, `${ns}/${d.metadata.name}`);
    this.commit('pods', 'ADDED', pod);
    if (this.autoReady) this.markPodRunning(name, { ready: true, namespace: ns });
  }

  private updateDeploymentStatus(key: string, hash: string, isReady: (p: KubeObject) => boolean): void {
    const d = this.store.deployments.get(key);
    if (!d) return;
    const live = this.ownedPods(key).filter((p) => !p.metadata.deletionTimestamp);
    const updated = live.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const ready = live.filter(isReady).length;
    const replicas: number = d.spec.replicas;
    const ru = d.spec.strategy?.rollingUpdate ?? {};
    const minAvailable = replicas - resolveIntOrPercent(ru.maxUnavailable, replicas, false, 0);
    const complete = updated.length === replicas && live.length === replicas && updated.every(isReady);
    const status: KubeObject = {
      observedGeneration: d.metadata.generation,
      replicas: live.length,
      updatedReplicas: updated.length,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(replicas - ready > 0 ? { unavailableReplicas: replicas - ready } : {}),
      conditions: [
        ready >= minAvailable
          ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
          : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
        complete
          ? { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${d.metadata.name}-${hash}" has successfully progressed.` }
          : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${d.metadata.name}-${hash}" is progressing.` },
      ],
    };
    const strip = (s: KubeObject | undefined): string =>
      JSON.stringify({ ...s, conditions: (s?.conditions ?? []).map(({ lastUpdateTime: _u, lastTransitionTime: _t, ...c }: KubeObject) => c) });
    if (strip(d.status) === strip(status)) return;
    const now = timestamp();
    status.conditions = status.conditions.map((c: KubeObject) => {
      const prev = (d.status?.conditions ?? []).find((p: KubeObject) => p.type === c.type);
      const same = prev && prev.status === c.status;
      return { ...c, lastUpdateTime: now, lastTransitionTime: same ? prev.lastTransitionTime : now };
    });
    const next = structuredClone(d);
    next.status = status;
    this.commit('deployments', 'MODIFIED', next, d);
  }
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** JSON with object keys sorted, so equal objects compare equal whatever order a client wrote their keys in. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x as object).sort().map((k) => [k, (x as Record<string, unknown>)[k]]))
      : x,
  );
}

/** The `pod-template-hash` of a template: stable for equal templates (key order aside), 10 safe characters. */
export function templateHash(template: unknown): string {
  return safeString(createHash('sha256').update(canonicalJson(template)).digest(), 10);
}

function uidFor(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function methodNotAllowed(): KubeStatusError {
  return new KubeStatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function writeEvent(res: ServerResponse, type: string, object: KubeObject): void {
  res.write(`${JSON.stringify({ type, object })}\n`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
