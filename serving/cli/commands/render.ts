import { basename, dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { controlPlaneManifests } from '../../../adapters/orchestrators/kubernetes/control-plane-manifests.js';
import {
  deploymentManifest,
  projectConfigMapManifest,
  serviceManifest,
  type ManifestOptions,
} from '../../../adapters/orchestrators/kubernetes/kubernetes-manifests.js';
import { DEFAULT_REPLICA_COMMAND, DEFAULT_REPLICA_IMAGE } from '../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-options.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatConfigProblem } from '../../../core/errors.js';
import { REQUIREMENTS_FILE } from '../../../core/predictor/python-predictor.js';
import { encodeBundle, packProject, projectId } from '../../daemon/project-bundle.js';
import { revisionOf } from '../../daemon/revision.js';
import { findConfigFile } from './validate.js';

export interface RenderOptions {
  /** Configuration file, or a folder holding myelin.yaml / cortex.yaml (default: the current folder). Not read with `daemon`. */
  readonly file?: string;
  readonly cwd: string;
  /** Image of the replicas (and of the daemon with `daemon`); default `myelin/replica:<version>`. */
  readonly image?: string;
  /** Namespace written into every object; default `default`. */
  readonly namespace?: string;
  /** Print the in-cluster control plane (daemon, RBAC, NATS, Services) instead of an API's objects. */
  readonly daemon?: boolean;
  /**
   * NATS URL. With `daemon`: the daemon uses it and the bundled NATS is left out. Without: set as
   * `MYELIN_NATS_URL` on the replicas (as the daemon does with `--nats`).
   */
  readonly nats?: string;
  /** ServiceAccount of the API pods (`--service-account`); with `daemon`, what the daemon gives its API pods. */
  readonly serviceAccount?: string;
  /** Image pull secrets (`--image-pull-secret`, repeatable): of the API pods, and with `daemon` of the daemon's pod too. */
  readonly imagePullSecrets?: readonly string[];
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Objects as multi-document YAML, `---` between them (no anchors: every object stands alone). */
export function toYamlDocuments(objects: readonly KubernetesObject[]): string {
  return objects.map((o) => stringify(o, { aliasDuplicateObjects: false, lineWidth: 0 })).join('---\n');
}

/**
 * `myelin render [file] [--image IMG] [--namespace NS] [--nats URL]`: prints, for each API of the
 * file, the ConfigMap with its packed project, the Deployment and the Service, built by the same
 * functions the `kubernetes` target applies (the pods read their project from the ConfigMap, so the
 * output is self-contained: `myelin render | kubectl apply -f -`). Replicas start at
 * `init_replicas`; nothing autoscales them without the daemon.
 *
 * `myelin render --daemon [--image IMG] [--namespace NS] [--nats URL]`: prints the in-cluster
 * control plane instead (see `controlPlaneManifests`).
 *
 * Returns the printed objects. Throws the loader's `ConfigError`, or `OrchestratorError` when the
 * project is too large for a ConfigMap.
 */
export async function render(options: RenderOptions): Promise<KubernetesObject[]> {
  const namespace = options.namespace ?? 'default';
  const image = options.image ?? DEFAULT_REPLICA_IMAGE;
  let objects: KubernetesObject[];
  if (options.daemon) {
    objects = controlPlaneManifests({
      namespace,
      image,
      ...(options.nats ? { nats: options.nats } : {}),
      ...(options.imagePullSecrets ? { imagePullSecrets: options.imagePullSecrets } : {}),
      ...(options.serviceAccount ? { podServiceAccount: options.serviceAccount } : {}),
    });
  } else {
    const file = findConfigFile(options.cwd, options.file);
    const { specs, warnings } = await loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, cwd: options.cwd, target: 'kubernetes' });
    for (const w of warnings) options.stderr.write(`${formatConfigProblem(w)}\n`);
    const abs = resolve(options.cwd, file);
    const bundle = await packProject(dirname(abs), basename(abs));
    const encoded = encodeBundle(bundle);
    const pid = projectId(bundle);
    const pythonRequirements = bundle.files.some((f) => f.path === REQUIREMENTS_FILE);
    const manifest: ManifestOptions = {
      namespace,
      image,
      command: DEFAULT_REPLICA_COMMAND,
      terminationGracePeriodSeconds: 60,
      ...(options.nats ? { replicaEnv: { MYELIN_NATS_URL: options.nats } } : {}),
      ...(options.serviceAccount ? { serviceAccountName: options.serviceAccount } : {}),
      ...(options.imagePullSecrets ? { imagePullSecrets: options.imagePullSecrets } : {}),
    };
    objects = [];
    for (const spec of specs) {
      const revision = revisionOf(spec, pid, '');
      objects.push(
        projectConfigMapManifest(spec.name, encoded, manifest),
        deploymentManifest({ spec, revision, replicas: spec.autoscaling.initReplicas }, manifest, { kind: 'config-map', pythonRequirements }),
        serviceManifest(spec.name, manifest),
      );
    }
  }
  options.stdout.write(toYamlDocuments(objects));
  return objects;
}
