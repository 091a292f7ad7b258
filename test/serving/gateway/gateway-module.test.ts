import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { BehaviorSubject, EMPTY } from 'rxjs';
import { Logger } from '../../../core/ports/logger.js';
import { OrchestratorTarget, type ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import { GatewayConfig, gatewayModule } from '../../../serving/gateway/gateway-module.js';
import { TestReplica, gatewaySpec, httpRequest, replicaInfo } from '../../harness/gateway-replicas.js';

/** Only `replicas$` matters to the gateway; the rest of the port is not called. */
function replicasOnlyTarget(replicas$: BehaviorSubject<readonly ReplicaInfo[]>): OrchestratorTarget {
  const unused = (): never => {
    throw new Error('not used by the gateway');
  };
  return {
    kind: 'test',
    start: unused,
    close: unused,
    apply: unused,
    scale: unused,
    remove: unused,
    status: unused,
    replicas$: () => replicas$,
    logs$: () => EMPTY,
  };
}

test('gatewayModule builds one Gateway fed by the bound orchestrator’s replicas$', async () => {
  const replica = await TestReplica.start('m0');
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([replicaInfo('api', 'm0', replica.port)]);
  const container = new Container();
  container.bind(Logger).toConstantValue(pino({ level: 'silent' }));
  container.bind(OrchestratorTarget).toConstantValue(replicasOnlyTarget(replicas$));
  container.bind<GatewayConfig>(GatewayConfig).toConstantValue({ host: '127.0.0.1', port: 0 });
  container.load(gatewayModule);
  const gw = container.get(Gateway);
  assert.equal(container.get(Gateway), gw, 'singleton');
  try {
    await gw.start();
    await gw.upsertApi(gatewaySpec('api'));
    const got = await httpRequest(gw.sharedPort(), { method: 'POST', path: '/api', body: '{}' });
    assert.equal(got.status, 200);
    assert.equal(got.headers['x-replica'], 'm0');
  } finally {
    await gw.close();
    await replica.close();
  }
});
