/**
 * Why the kubernetes target keeps its own KubeListWatch instead of @kubernetes/client-node's
 * ListWatch/informer (issue 12 asked to switch unless a reason is measured): both run here against the
 * same fake API server, in the situations a daemon meets in a cluster. The library's ListWatch (1.4)
 * stops for good after a watch connection error (it reports ERROR and never reconnects), and its
 * start() resolves when the first list fails, so a daemon could neither survive an API server restart
 * nor refuse to start against an unreachable one. KubeListWatch reconnects with back-off and resumes
 * from the last resourceVersion, and its start() rejects. docs/kubernetes.md ("Watching") records this.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, ListWatch, Watch, type V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeListWatch } from '../../../../adapters/orchestrators/kubernetes/kube-list-watch.js';
import { FakeKubeApi } from '../../../harness/fake-kube-api.js';

const log = pino({ level: 'silent' });
const PATH = '/api/v1/namespaces/default/configmaps';
let fake: FakeKubeApi;
let core: CoreV1Api;
let kc: KubeConfig;

before(async () => {
  fake = await FakeKubeApi.start();
  kc = new KubeConfig();
  kc.loadFromString(fake.kubeconfig());
  core = kc.makeApiClient(CoreV1Api);
});
after(async () => {
  await fake?.close();
});

const configMap = (name: string): V1ConfigMap => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { probe: 'list-watch' } }, data: { k: name } });

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

test('after a watch connection error, KubeListWatch reconnects and client-node ListWatch does not', async () => {
  const list = () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'probe=list-watch' });
  const ours = new KubeListWatch<V1ConfigMap>({ watch: new Watch(kc), path: PATH, labelSelector: 'probe=list-watch', list, onChange: () => undefined, log, retryMs: 50 });
  const errors: unknown[] = [];
  const theirs = new ListWatch<V1ConfigMap>(PATH, new Watch(kc), list, false, 'probe=list-watch');
  theirs.on('error', (err) => errors.push(err));
  try {
    await ours.start();
    await theirs.start();
    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap('before') });
    assert.ok(await eventually(() => ours.get('before') !== undefined && theirs.get('before', 'default') !== undefined, 5_000), 'both see the first object');

    assert.ok(fake.dropWatches('destroy') >= 2, 'both watches were cut');
    await core.createNamespacedConfigMap({ namespace: 'default', body: configMap('after') });
    assert.ok(await eventually(() => ours.get('after') !== undefined, 5_000), 'KubeListWatch sees the object made after the cut');
    assert.ok(ours.connects >= 2, 'KubeListWatch opened a new watch');
    // Give the library the same time and more: it reported the error and stays disconnected.
    await eventually(() => theirs.get('after', 'default') !== undefined, 2_000);
    assert.equal(theirs.get('after', 'default'), undefined, 'client-node ListWatch never saw it');
    assert.ok(errors.length >= 1, 'client-node ListWatch reported the error');
  } finally {
    ours.close();
    await theirs.stop();
  }
});

test('against an unreachable API server, KubeListWatch.start rejects and client-node ListWatch.start resolves', async () => {
  const dead = new KubeConfig();
  dead.loadFromString(fake.kubeconfig().replace(fake.url, 'http://127.0.0.1:1'));
  const deadCore = dead.makeApiClient(CoreV1Api);
  const list = () => deadCore.listNamespacedConfigMap({ namespace: 'default' });
  const ours = new KubeListWatch<V1ConfigMap>({ watch: new Watch(dead), path: PATH, labelSelector: '', list, onChange: () => undefined, log, retryMs: 50 });
  await assert.rejects(ours.start());
  ours.close();
  const errors: unknown[] = [];
  const theirs = new ListWatch<V1ConfigMap>(PATH, new Watch(dead), list, false);
  theirs.on('error', (err) => errors.push(err));
  await theirs.start(); // resolves: the failure only reaches the ERROR callback
  assert.equal(errors.length, 1);
  assert.deepEqual(theirs.list(), []);
  await theirs.stop();
});
