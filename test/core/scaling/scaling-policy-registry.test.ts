import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Container } from 'inversify';
import { ScalingPolicyRegistry } from '../../../core/contribution/scaling-policy-registry.js';
import { UnknownKindError } from '../../../core/errors.js';
import { scalingBurstModule } from '../../../plugins/scaling-burst/scaling-burst-module.js';
import { scalingCortexModule } from '../../../plugins/scaling-cortex/scaling-cortex-module.js';
import { scalingCpuModule } from '../../../plugins/scaling-cpu/scaling-cpu-module.js';

test('the three scaling plugin modules contribute cortex, burst and cpu to the registry', async () => {
  const c = new Container();
  await c.load(scalingCortexModule, scalingBurstModule, scalingCpuModule);
  c.bind(ScalingPolicyRegistry).toSelf().inSingletonScope();
  const r = c.get(ScalingPolicyRegistry);
  assert.deepEqual(r.kinds(), ['burst', 'cortex', 'cpu']);
  const cases = [
    { kind: 'cortex', metric: 'inFlight' },
    { kind: 'burst', metric: 'inFlight' },
    { kind: 'cpu', metric: 'cpuUtilization' },
  ];
  for (const want of cases) {
    const p = r.get(want.kind);
    assert.deepEqual({ kind: p.kind, metric: p.metric }, want);
  }
  assert.throws(() => r.get('hpa'), (e: unknown) => e instanceof UnknownKindError && /known: "burst", "cortex", "cpu"/.test(e.message));
});
