import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  Log,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { inject, injectable, optional } from 'inversify';
import { BehaviorSubject, Observable, type Subscription } from 'rxjs';
import { OrchestratorError } from '../../../core/errors.js';
import { REQUIREMENTS_FILE } from '../../../core/predictor/python-predictor.js';
import { Logger } from '../../../core/ports/logger.js';
import type { ApiDeployment, ApiReplicaStatus, OrchestratorTarget, ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { KubeListWatch } from './kube-list-watch.js';
import {
  API_LABEL,
  CONTAINER_NAME,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  defaultDaemonUrl,
  deploymentManifest,
  objectName,
  projectObjectName,
  projectSecretManifest,
  projectUrl,
  serviceManifest,
  type ManifestOptions,
  type ProjectDelivery,
} from './kubernetes-manifests.js';
import {
  DEFAULT_REPLICA_COMMAND,
  DEFAULT_REPLICA_IMAGE,
  KubernetesOrchestratorOptions,
} from './kubernetes-orchestrator-options.js';
import { deploymentRevision, podView, replicaStatus, type PodView } from './pod-replicas.js';

/**
 * Builds the client configuration from the options: an explicit server URL, the pod's service
 * account (`inCluster`), a kubeconfig file, or the defaults. `clusterPathPrefix` is put before the
 * service account's paths (tests).
 */
export function loadKubeConfig(o: KubernetesOrchestratorOptions, clusterPathPrefix = ''): KubeConfig {
  const kc = new KubeConfig();
  if (o.server) {
    // client-node 1.x refuses plain http unless TLS verification is "skipped" (there is no TLS to verify).
    kc.loadFromClusterAndUser(
      { name: 'myelin', server: o.server.replace(/\/+$/, ''), skipTLSVerify: o.server.startsWith('http:') },
      { name: 'myelin', ...(o.token ? { token: o.token } : {}) },
    );
  } else if (o.inCluster) {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new Error('--in-cluster needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set in every pod by Kubernetes)');
    }
    kc.loadFromCluster(clusterPathPrefix);
  } else if (o.kubeconfigPath) kc.loadFromFile(o.kubeconfigPath);
  else kc.loadFromDefault();
  if (o.context) kc.setCurrentContext(o.context);
  return kc;
}

/** The HTTP status of a failed client call, when the server answered. */
function httpStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The `message` of the Status object the API server answered with, else the error's own message. */
function statusMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    try {
      const s = typeof body === 'string' ? JSON.parse(body) : body;
      if (s && typeof s === 'object' && typeof (s as { message?: unknown }).message === 'string') return (s as { message: string }).message;
    } catch {
      // not JSON: fall through to the exception's own message
    }
  }
  return err instanceof Error ? err.message : String(err);
}

function kubeError(what: string, err: unknown): OrchestratorError {
  const code = httpStatus(err);
  return new OrchestratorError(`kubernetes: ${what} failed${code ? ` (HTTP ${code})` : ''}: ${statusMessage(err)}`, { cause: err });
}

/**
 * The `kubernetes` orchestrator target: each API is one apps/v1 Deployment `api-<name>`, one
 * core/v1 Service `api-<name>` (port 8888) and, when it runs a stored project, one Secret
 * `api-<name>-project`, in one namespace, and nothing else. What it may call is
 * `CONTROL_PLANE_RULES` (control-plane-manifests.ts), checked by a test.
 *
 * - `apply` creates or replaces the Deployment (and creates the Service when missing). A new
 *   revision changes the pod template, and Kubernetes rolls it out within the spec's maxSurge /
 *   maxUnavailable; the same revision keeps the running template, so autoscaling or networking
 *   changes never restart pods (the pods keep the spec of their revision in `MYELIN_API_SPEC`).
 * - `scale` merge-patches `spec.replicas` through the `scale` subresource; the template is untouched.
 * - With `ApiDeployment.project`, `apply` first creates or replaces the Secret `api-<name>-project`
 *   (the API's project token), and the pods' init container downloads the project from the daemon
 *   (`daemonUrl`) into `/project`; see `ProjectDelivery`.
 * - `remove` deletes the Deployment (its pods go with it, in the background), the Service and the Secret.
 * - `replicas$` and `status` come from a list-then-watch of the Deployments and pods labelled
 *   `app.kubernetes.io/managed-by=myelin`, which resumes after a dropped connection and lists again
 *   after 410 Expired. Pod addresses are pod IPs, reachable from inside the cluster.
 * - `logs$` reads the pods' `log` endpoint (following new pods when `follow`).
 *
 * `close` stops the watches and log streams, completes `replicas$`, and leaves the Deployments,
 * Services and pods running: a cluster keeps serving while the daemon restarts, and the next
 * instance's `start` finds them again. With `removeOnClose` it first removes (as `remove` does) the
 * APIs this instance applied and has not removed, and no others. After `close`, `start`, `apply`
 * and `scale` reject with `OrchestratorError` ("the kubernetes orchestrator is closed"); `remove`
 * still deletes, so a caller can clean up; `status` answers from the last state seen.
 */
@injectable()
export class KubernetesOrchestrator implements OrchestratorTarget {
  readonly kind = 'kubernetes';
  /** The namespace every object lives in. */
  readonly namespace: string;
  private readonly log: Logger;
  private readonly kc: KubeConfig;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly manifest: ManifestOptions;
  private readonly daemonUrl: string;
  private readonly deployments: KubeListWatch<V1Deployment>;
  private readonly pods: KubeListWatch<V1Pod>;
  private readonly replicasSubject = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  private readonly podsChanged = new BehaviorSubject<void>(undefined);
  private views: PodView[] = [];
  private lastEmitted = '[]';
  /** Last log lines of each API's most recent crash, and which crashes (`pod#restarts`) were fetched. */
  private readonly lastLogs = new Map<string, readonly string[]>();
  private readonly fetchedCrashes = new Set<string>();
  /** APIs this instance applied and has not removed (what `removeOnClose` removes). */
  private readonly applied = new Set<string>();
  /** `apply` calls under way. */
  private readonly applying = new Set<Promise<void>>();
  private readonly logSubscriptions = new Set<Subscription>();
  private started = false;
  private closed = false;

  constructor(
    @inject(Logger) log: Logger,
    @inject(KubernetesOrchestratorOptions) @optional() private readonly options: KubernetesOrchestratorOptions = {},
  ) {
    this.log = log.child({ component: 'orchestrators/kubernetes' });
    try {
      this.kc = loadKubeConfig(this.options);
    } catch (err) {
      throw new OrchestratorError(`kubernetes: cannot load the cluster configuration: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.namespace = this.options.namespace ?? this.kc.getContextObject(this.kc.getCurrentContext())?.namespace?.trim() ?? 'default';
    this.daemonUrl = this.options.daemonUrl ?? defaultDaemonUrl(this.namespace);
    this.apps = this.kc.makeApiClient(AppsV1Api);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.manifest = {
      namespace: this.namespace,
      image: this.options.image ?? DEFAULT_REPLICA_IMAGE,
      imagePullPolicy: this.options.imagePullPolicy,
      command: this.options.command ?? DEFAULT_REPLICA_COMMAND,
      terminationGracePeriodSeconds: this.options.terminationGracePeriodSeconds ?? 60,
      replicaEnv: this.options.replicaEnv,
      serviceAccountName: this.options.serviceAccountName,
      imagePullSecrets: this.options.imagePullSecrets,
    };
    const watch = new Watch(this.kc);
    const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
    const retryMs = this.options.watchRetryMs ?? 1000;
    const ns = this.namespace;
    this.deployments = new KubeListWatch<V1Deployment>({
      watch,
      path: `/apis/apps/v1/namespaces/${ns}/deployments`,
      labelSelector,
      list: () => this.apps.listNamespacedDeployment({ namespace: ns, labelSelector }),
      onChange: () => undefined,
      log: this.log,
      retryMs,
    });
    this.pods = new KubeListWatch<V1Pod>({
      watch,
      path: `/api/v1/namespaces/${ns}/pods`,
      labelSelector: `${labelSelector},${API_LABEL}`,
      list: () => this.core.listNamespacedPod({ namespace: ns, labelSelector: `${labelSelector},${API_LABEL}` }),
      onChange: () => this.onPodsChanged(),
      log: this.log,
      retryMs,
    });
  }

  /** Watch connections opened so far for pods and deployments (a reconnection adds one). */
  watchConnections(): { readonly pods: number; readonly deployments: number } {
    return { pods: this.pods.connects, deployments: this.deployments.connects };
  }

  /** Lists the Deployments and pods (rejects with `OrchestratorError` when the API server cannot be used), then watches them. */
  async start(): Promise<void> {
    this.assertOpen();
    if (this.started) return;
    this.started = true;
    try {
      await Promise.all([this.deployments.start(), this.pods.start()]);
    } catch (err) {
      this.deployments.close();
      this.pods.close();
      throw kubeError(`listing deployments and pods in namespace ${this.namespace} at ${this.kc.getCurrentCluster()?.server ?? '?'}`, err);
    }
    this.log.info({ namespace: this.namespace, server: this.kc.getCurrentCluster()?.server }, 'kubernetes target started');
  }

  /**
   * Stops the watches and log streams (`logs$` subscribers see their streams end) and completes
   * `replicas$`; leaves every cluster object in place unless `removeOnClose`, which first deletes
   * the Deployment and Service of each API this instance applied (failures are logged, not thrown).
   * Later calls do nothing.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.options.removeOnClose) {
      await Promise.allSettled([...this.applying]);
      for (const api of [...this.applied]) {
        await this.remove(api).catch((err: unknown) => this.log.warn({ err, api }, 'kubernetes remove on close failed'));
      }
    }
    this.deployments.close();
    this.pods.close();
    for (const s of this.logSubscriptions) s.unsubscribe();
    this.logSubscriptions.clear();
    this.podsChanged.complete();
    this.replicasSubject.complete();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new OrchestratorError('the kubernetes orchestrator is closed');
  }

  /** Rejects with `OrchestratorError` once closed, when the name is too long, or when the API server refuses. */
  async apply(deployment: ApiDeployment): Promise<void> {
    this.assertOpen();
    // Tracked so that close() with removeOnClose waits for it and removes what it wrote.
    const write = this.write(deployment);
    this.applying.add(write);
    try {
      await write;
    } finally {
      this.applying.delete(write);
    }
  }

  private async write(deployment: ApiDeployment): Promise<void> {
    const api = deployment.spec.name;
    const name = objectName(api);
    if (name.length > 63) throw new OrchestratorError(`kubernetes: api name "${api}" is too long (at most 59 characters, so that "${name}" is a valid Service name)`);
    let delivery: ProjectDelivery | undefined;
    if (deployment.project) {
      // The Secret first: the init container of the first pod reads the token from it.
      await this.applySecret(api, deployment.project.token);
      const pythonRequirements = await isFile(join(deployment.spec.projectDir, REQUIREMENTS_FILE));
      delivery = { kind: 'daemon', url: projectUrl(this.daemonUrl, deployment.project, api), pythonRequirements };
    }
    const body = deploymentManifest(deployment, this.manifest, delivery);
    let written: V1Deployment | undefined;
    // Read, then create or replace with the read resourceVersion; a concurrent writer (409) makes us read again.
    for (let attempt = 1; !written; attempt++) {
      let existing: V1Deployment | undefined;
      try {
        existing = await this.apps.readNamespacedDeployment({ name, namespace: this.namespace });
      } catch (err) {
        if (httpStatus(err) !== 404) throw kubeError(`reading deployment ${name}`, err);
      }
      try {
        if (!existing) {
          written = await this.apps.createNamespacedDeployment({ namespace: this.namespace, body });
          this.log.info({ api, revision: deployment.revision, replicas: deployment.replicas }, 'deployment created');
        } else {
          const sameRevision = deploymentRevision(existing) === deployment.revision;
          const next: V1Deployment = {
            ...body,
            metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion },
            // Same revision: keep the running template, so nothing restarts (only replicas, strategy, annotations change).
            spec: { ...body.spec!, template: sameRevision && existing.spec?.template ? existing.spec.template : body.spec!.template },
          };
          written = await this.apps.replaceNamespacedDeployment({ name, namespace: this.namespace, body: next });
          this.log.info({ api, revision: deployment.revision, replicas: deployment.replicas, rollout: !sameRevision }, 'deployment replaced');
        }
      } catch (err) {
        const code = httpStatus(err);
        if ((code === 409 || (code === 404 && existing)) && attempt < 5) continue;
        throw kubeError(`${existing ? 'replacing' : 'creating'} deployment ${name}`, err);
      }
    }
    this.deployments.put(written);
    this.applied.add(api);
    await this.ensureService(api);
  }

  /** Creates the Secret `api-<name>-project` with the API's project token, or replaces it when it exists. */
  private async applySecret(api: string, token: string): Promise<void> {
    const name = projectObjectName(api);
    const body = projectSecretManifest(api, token, this.manifest);
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body });
      this.log.info({ api }, 'project secret created');
    } catch (err) {
      if (httpStatus(err) !== 409) throw kubeError(`creating secret ${name}`, err);
      try {
        await this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body });
      } catch (e) {
        throw kubeError(`replacing secret ${name}`, e);
      }
    }
  }

  private async ensureService(api: string): Promise<void> {
    const name = objectName(api);
    try {
      await this.core.createNamespacedService({ namespace: this.namespace, body: serviceManifest(api, this.manifest) });
      this.log.info({ api }, 'service created');
    } catch (err) {
      // It exists already: its selector and port never change, so there is nothing to update.
      if (httpStatus(err) !== 409) throw kubeError(`creating service ${name}`, err);
    }
  }

  /** Rejects with `OrchestratorError` once closed, for a count that is not a whole number ≥ 0, or when the API is not deployed. */
  async scale(api: string, replicas: number): Promise<void> {
    this.assertOpen();
    const name = objectName(api);
    if (!Number.isInteger(replicas) || replicas < 0) throw new OrchestratorError(`kubernetes: cannot scale ${api} to ${replicas} replicas`);
    try {
      // The generated client sends JSON-Patch unless told otherwise; this body is a merge patch.
      await this.apps.patchNamespacedDeploymentScale(
        { name, namespace: this.namespace, body: { spec: { replicas } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (httpStatus(err) === 404) throw new OrchestratorError(`kubernetes: api ${api} is not deployed (no deployment ${name} in namespace ${this.namespace})`, { cause: err });
      throw kubeError(`scaling deployment ${name}`, err);
    }
    const cached = this.deployments.get(name);
    if (cached?.spec) this.deployments.put({ ...cached, spec: { ...cached.spec, replicas } });
    this.log.info({ api, replicas }, 'deployment scaled');
  }

  /** Deletes the API's Deployment (its pods terminate gracefully afterwards), Service and project Secret; what is already gone is fine. Works after `close`. */
  async remove(api: string): Promise<void> {
    const name = objectName(api);
    const deletes = [
      this.apps.deleteNamespacedDeployment({ name, namespace: this.namespace, propagationPolicy: 'Background' }).catch((err: unknown) => {
        if (httpStatus(err) !== 404) throw kubeError(`deleting deployment ${name}`, err);
      }),
      this.core.deleteNamespacedService({ name, namespace: this.namespace }).catch((err: unknown) => {
        if (httpStatus(err) !== 404) throw kubeError(`deleting service ${name}`, err);
      }),
      this.core.deleteNamespacedSecret({ name: projectObjectName(api), namespace: this.namespace }).catch((err: unknown) => {
        if (httpStatus(err) !== 404) throw kubeError(`deleting secret ${projectObjectName(api)}`, err);
      }),
    ];
    await Promise.all(deletes);
    this.deployments.forget(name);
    this.applied.delete(api);
    this.lastLogs.delete(api);
    this.log.info({ api }, 'deployment and service deleted');
  }

  status(api: string): ApiReplicaStatus | undefined {
    const d = this.deployments.get(objectName(api));
    if (!d) return undefined;
    return replicaStatus(api, d, this.views, this.lastLogs.get(api) ?? []);
  }

  replicas$(): Observable<readonly ReplicaInfo[]> {
    return this.replicasSubject.asObservable();
  }

  logs$(api: string, options: { readonly follow: boolean; readonly tail?: number }): Observable<string> {
    return new Observable<string>((subscriber) => {
      const streams = new Map<string, { abort?: AbortController; out: PassThrough }>();
      /** Pod states whose log could not be read (`pod#restarts#state`): retried only once the pod changes. */
      const unreadable = new Set<string>();
      let done = false;
      const finishIfIdle = (): void => {
        if (!options.follow && !done && streams.size === 0) subscriber.complete();
      };
      const follow = (view: PodView): void => {
        // One stream per container run: a restarted container has a new log, read from its start.
        const key = `${view.replica.id}#${view.restarts}`;
        const stateKey = `${key}#${view.replica.state}`;
        if (streams.has(key) || unreadable.has(stateKey)) return;
        const out = new PassThrough();
        const entry: { abort?: AbortController; out: PassThrough } = { out };
        streams.set(key, entry);
        const lines = createInterface({ input: out, crlfDelay: Infinity });
        lines.on('line', (l) => subscriber.next(l));
        lines.on('close', () => {
          if (streams.get(key) === entry && !options.follow) streams.delete(key);
          finishIfIdle();
        });
        new Log(this.kc)
          .log(this.namespace, view.replica.id, CONTAINER_NAME, out, {
            follow: options.follow,
            ...(options.tail !== undefined && options.tail > 0 ? { tailLines: options.tail } : {}),
          })
          .then((abort) => {
            if (done) abort.abort();
            else entry.abort = abort;
          })
          .catch((err: unknown) => {
            // Not started yet (400) or gone (404): nothing to read now; when following, a later pod change retries.
            this.log.debug({ err, api, pod: view.replica.id }, 'pod log unavailable');
            unreadable.add(stateKey);
            if (streams.get(key) === entry) streams.delete(key);
            out.end();
          });
      };
      const scan = (): void => {
        for (const v of this.views) {
          if (v.replica.api !== api) continue;
          if (options.follow && (v.replica.state === 'terminating' || v.replica.state === 'pending')) continue;
          follow(v);
        }
      };
      scan();
      let sub: Subscription | undefined;
      if (options.follow) {
        sub = this.podsChanged.subscribe(() => scan());
        this.logSubscriptions.add(sub);
      } else finishIfIdle();
      return () => {
        done = true;
        if (sub) {
          sub.unsubscribe();
          this.logSubscriptions.delete(sub);
        }
        for (const s of streams.values()) {
          s.abort?.abort();
          s.out.end();
        }
        streams.clear();
      };
    });
  }

  private onPodsChanged(): void {
    this.views = this.pods
      .values()
      .map(podView)
      .filter((v): v is PodView => v !== undefined)
      .sort((a, b) => a.replica.api.localeCompare(b.replica.api) || a.replica.id.localeCompare(b.replica.id));
    const list = this.views.map((v) => v.replica);
    const text = JSON.stringify(list);
    if (text !== this.lastEmitted) {
      this.lastEmitted = text;
      this.replicasSubject.next(list);
    }
    for (const v of this.views) {
      const d = this.deployments.get(objectName(v.replica.api));
      if (v.replica.state === 'crashed' && d && deploymentRevision(d) === v.replica.revision) this.fetchCrashLog(v);
    }
    if (!this.closed) this.podsChanged.next();
  }

  /** Keeps the last lines a crashed replica wrote (its previous container's log), for `status().lastLogLines`. */
  private fetchCrashLog(v: PodView): void {
    const key = `${v.replica.id}#${v.restarts}`;
    if (this.fetchedCrashes.has(key) || this.closed) return;
    this.fetchedCrashes.add(key);
    const tailLines = this.options.lastLogLines ?? 20;
    const read = (previous: boolean): Promise<string> =>
      this.core.readNamespacedPodLog({ name: v.replica.id, namespace: this.namespace, container: CONTAINER_NAME, tailLines, previous });
    read(true)
      .catch(() => read(false))
      .then((text) => {
        const lines = String(text).split('\n').filter((l) => l !== '');
        if (lines.length) this.lastLogs.set(v.replica.api, lines.slice(-tailLines));
      })
      .catch((err: unknown) => this.log.debug({ err, pod: v.replica.id }, 'crashed pod log unavailable'));
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isFile(),
    () => false,
  );
}
