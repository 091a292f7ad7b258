import { PACKAGE_VERSION as version } from '../../fs/package-root.js';

/** Token of the daemon's options for the `kubernetes` target; optional (every field has a default). */
export const KubernetesOrchestratorOptions = Symbol('KubernetesOrchestratorOptions');

/** Options of the `kubernetes` orchestrator target (`myelin up --target kubernetes`). */
export interface KubernetesOrchestratorOptions {
  /** Namespace of every object myelin creates; default the kubeconfig context's namespace, else `default`. */
  readonly namespace?: string;
  /**
   * API server URL used without a kubeconfig, e.g. `http://127.0.0.1:8001` behind `kubectl proxy`,
   * or a test's fake. Wins over `kubeconfigPath`. Plain `http:` skips TLS (there is none).
   */
  readonly server?: string;
  /** Bearer token sent to `server` (ignored with a kubeconfig, which carries its own credentials). */
  readonly token?: string;
  /**
   * Running inside the cluster (`myelin up --in-cluster`): the client uses the pod's service account
   * (`KubeConfig.loadFromCluster()`: token, CA and namespace under
   * /var/run/secrets/kubernetes.io/serviceaccount, server from `KUBERNETES_SERVICE_HOST`/`_PORT`).
   * `server` still wins when given.
   */
  readonly inCluster?: boolean;
  /** Kubeconfig file; default `KubeConfig.loadFromDefault()` ($KUBECONFIG, ~/.kube/config, or in-cluster service account). */
  readonly kubeconfigPath?: string;
  /** Kubeconfig context to use instead of the current one. */
  readonly context?: string;
  /** Replica container image; default `myelin/replica:<package version>`. */
  readonly image?: string;
  /** `imagePullPolicy` of the replica container; default left to Kubernetes. */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Command of the replica container; default `['myelin', 'replica']`. The spec is in `MYELIN_API_SPEC`. */
  readonly command?: readonly string[];
  /** Seconds a pod gets to drain before it is killed; default 60 (Cortex's). */
  readonly terminationGracePeriodSeconds?: number;
  /** First wait before re-opening a failed watch, ms; doubles per consecutive failure, capped at 30 s. Default 1000. */
  readonly watchRetryMs?: number;
  /** Lines of a crashed pod's log kept for `status().lastLogLines`; default 20. */
  readonly lastLogLines?: number;
  /**
   * Delete the Deployments and Services of the APIs this instance applied when it closes. Default
   * false: workloads in a cluster outlive the daemon, which finds them again on its next start.
   */
  readonly removeOnClose?: boolean;
  /**
   * The daemon's control API as pods reach it: an API's init container downloads its project from
   * `<daemonUrl>/v1/projects/<id>?api=<name>`. Default `http://myelin.<namespace>.svc:8889` (the
   * `myelin` Service of `myelin render --daemon`).
   */
  readonly daemonUrl?: string;
  /** More environment for every replica container (the daemon sets `MYELIN_NATS_URL` with `--nats`). */
  readonly replicaEnv?: Readonly<Record<string, string>>;
  /** ServiceAccount of the API pods (`myelin up --pod-service-account`); default the namespace's `default`. */
  readonly serviceAccountName?: string;
  /** Image pull secrets of the API pods (`myelin up --image-pull-secret`, repeatable). */
  readonly imagePullSecrets?: readonly string[];
}

/** The default replica image: `myelin/replica:<version of this package>`. */
export const DEFAULT_REPLICA_IMAGE = `myelin/replica:${version}`;
export const DEFAULT_REPLICA_COMMAND: readonly string[] = ['myelin', 'replica'];
