import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MonitoringSpec } from '../../../core/config/api-spec.js';
import { predictorResponse } from '../../../core/predictor/predictor-contract.js';
import { MAX_CLASSES_PER_INTERVAL, OTHER_CLASS, PredictionMonitor, monitoredValue } from '../../../serving/replica/prediction-monitor.js';

const cls: MonitoringSpec = { modelType: 'classification' };
const clsKey: MonitoringSpec = { modelType: 'classification', key: 'label' };
const reg: MonitoringSpec = { modelType: 'regression' };
const regKey: MonitoringSpec = { modelType: 'regression', key: 'price' };

const extraction = [
  { name: 'class string', spec: cls, prediction: 'setosa', want: 'setosa' },
  { name: 'class integer as string', spec: cls, prediction: 2, want: '2' },
  { name: 'class float refused', spec: cls, prediction: 2.5, want: null },
  { name: 'class by key', spec: clsKey, prediction: { label: 'cat', p: 0.9 }, want: 'cat' },
  { name: 'key missing', spec: clsKey, prediction: { p: 0.9 }, want: null },
  { name: 'object without key refused', spec: cls, prediction: { label: 'cat' }, want: null },
  { name: 'key on an array refused', spec: clsKey, prediction: ['cat'], want: null },
  { name: 'regression number', spec: reg, prediction: 3.25, want: 3.25 },
  { name: 'regression by key', spec: regKey, prediction: { price: 10 }, want: 10 },
  { name: 'regression NaN refused', spec: reg, prediction: Number.NaN, want: null },
  { name: 'regression string refused', spec: reg, prediction: '3', want: null },
  { name: 'looks into a predictorResponse body', spec: clsKey, prediction: predictorResponse({ status: 201, body: { label: 'dog' } }), want: 'dog' },
];
for (const c of extraction) {
  test(`monitoredValue: ${c.name}`, () => {
    assert.equal(monitoredValue(c.prediction, c.spec), c.want);
  });
}

test('classification counts classes per interval and resets', () => {
  const m = new PredictionMonitor(cls);
  for (const v of ['a', 'b', 'a', null]) m.record(v);
  assert.deepEqual(m.cut(), { modelType: 'classification', classes: { a: 2, b: 1 } });
  assert.equal(m.cut(), undefined);
});

test('classification caps distinct classes per interval', () => {
  const m = new PredictionMonitor(cls);
  for (let i = 0; i < MAX_CLASSES_PER_INTERVAL + 5; i++) m.record(`c${i}`);
  m.record('c0');
  const got = m.cut();
  assert.ok(got && got.modelType === 'classification');
  assert.equal(Object.keys(got.classes).length, MAX_CLASSES_PER_INTERVAL + 1);
  assert.equal(got.classes[OTHER_CLASS], 5);
  assert.equal(got.classes.c0, 2);
});

test('regression keeps count, min, max and sum and resets', () => {
  const m = new PredictionMonitor(reg);
  for (const v of [3, -1, 10]) assert.equal(m.record(v), true);
  assert.equal(m.record('x'), false);
  assert.deepEqual(m.cut(), { modelType: 'regression', count: 3, min: -1, max: 10, sum: 12 });
  assert.equal(m.cut(), undefined);
});
