import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KindRegistry } from '../../../core/contribution/kind-registry.js';
import { DuplicateKindError, UnknownKindError } from '../../../core/errors.js';

test('KindRegistry resolves kinds and aliases, rejects duplicates, lists known kinds', () => {
  const js = { kind: 'javascript', aliases: ['typescript'] };
  const onnx = { kind: 'onnx' };
  const r = new KindRegistry('predictor', [js, onnx]);
  assert.equal(r.get('typescript'), js);
  assert.equal(r.get('onnx'), onnx);
  assert.deepEqual(r.kinds(), ['javascript', 'onnx', 'typescript']);
  assert.throws(() => r.get('pytorch'), (e: unknown) => e instanceof UnknownKindError && /known: "javascript", "onnx", "typescript"/.test(e.message));
  assert.throws(() => new KindRegistry('predictor', [onnx, { kind: 'onnx' }]), DuplicateKindError);
});
