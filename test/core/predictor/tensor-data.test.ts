import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError, PredictorError } from '../../../core/errors.js';
import type { TensorSignature } from '../../../core/predictor/predictor-contract.js';
import { bindInputs, fromHalfBits, toNested, toTensorData } from '../../../core/predictor/tensor-data.js';

const iris: TensorSignature = { name: 'input', dtype: 'float32', shape: ['batch', 4] };
const ids: TensorSignature = { name: 'ids', dtype: 'int64', shape: [-1, 3] };

describe('toTensorData: accepted values', () => {
  const cases: { name: string; sig: TensorSignature; value: unknown; shape: number[]; data: unknown[] }[] = [
    { name: 'nested float batch of 2', sig: iris, value: [[1, 2, 3, 4], [5, 6, 7, 8]], shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] },
    { name: 'batch of 1', sig: iris, value: [[0.5, 1, 1.5, 2]], shape: [1, 4], data: [0.5, 1, 1.5, 2] },
    { name: 'flat Float32Array infers the batch dim', sig: iris, value: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] },
    { name: 'flat Float64Array is converted', sig: iris, value: new Float64Array([1, 2, 3, 4]), shape: [1, 4], data: [1, 2, 3, 4] },
    { name: '{ data, shape }', sig: iris, value: { data: [1, 2, 3, 4], shape: [1, 4] }, shape: [1, 4], data: [1, 2, 3, 4] },
    { name: 'int64 from safe integers', sig: ids, value: [[1, -2, 3]], shape: [1, 3], data: [1n, -2n, 3n] },
    { name: 'int64 from decimal strings beyond 2^53', sig: ids, value: [['9007199254740993', '0', '-1']], shape: [1, 3], data: [9007199254740993n, 0n, -1n] },
    { name: 'int32 from an Int32Array', sig: { name: 'x', dtype: 'int32', shape: [3] }, value: new Int32Array([7, 8, 9]), shape: [3], data: [7, 8, 9] },
    { name: 'bool from booleans and 0/1', sig: { name: 'm', dtype: 'bool', shape: [3] }, value: [true, false, 1], shape: [3], data: [1, 0, 1] },
    { name: 'string tensor', sig: { name: 's', dtype: 'string', shape: ['n'] }, value: ['a', 'bc'], shape: [2], data: ['a', 'bc'] },
    { name: 'scalar', sig: { name: 'k', dtype: 'float32', shape: [] }, value: 2.5, shape: [], data: [2.5] },
    { name: 'unknown signature shape takes any rank', sig: { name: 'u', dtype: 'float64', shape: [] }, value: [[[1]], [[2]]], shape: [2, 1, 1], data: [1, 2] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = toTensorData(c.sig, c.value);
      assert.deepEqual([...got.shape], c.shape);
      assert.deepEqual(Array.from(got.data as ArrayLike<unknown>), c.data);
      assert.equal(got.dtype, c.sig.dtype);
    });
  }

  test('a Float32Array of the right type is passed through without a copy', () => {
    const a = new Float32Array(8);
    assert.equal(toTensorData(iris, a).data, a);
  });

  // Nested arrays go through a fast fill first and, when it declines an element, through the walk that
  // reports where: a value the fast fill does not take but `put` accepts must still be accepted.
  const declinedByTheFastFill: { name: string; sig: { name: string; dtype: string; shape: (number | string)[] }; value: unknown; want: number[] }[] = [
    { name: 'bigint elements of a float32 input', sig: { name: 'x', dtype: 'float32', shape: ['batch', 2] }, value: [[1n, 2]], want: [1, 2] },
    { name: 'bigint elements of an int32 input', sig: { name: 'x', dtype: 'int32', shape: [2] }, value: [3n, 4], want: [3, 4] },
    { name: 'a scalar (rank 0)', sig: { name: 'x', dtype: 'float64', shape: [] }, value: 2.5, want: [2.5] },
  ];
  for (const c of declinedByTheFastFill) {
    test(`accepted after the fast fill declines: ${c.name}`, () => {
      const got = toTensorData(c.sig as never, c.value);
      assert.deepEqual(Array.from(got.data as ArrayLike<number>, Number), c.want);
    });
  }

  test('float16 values are stored as half bits', () => {
    const got = toTensorData({ name: 'h', dtype: 'float16', shape: [4] }, [1, -2, 0.5, 65504]);
    assert.deepEqual(Array.from(got.data as Uint16Array), [0x3c00, 0xc000, 0x3800, 0x7bff]);
    assert.deepEqual(Array.from(got.data as Uint16Array, fromHalfBits), [1, -2, 0.5, 65504]);
  });
});

describe('toTensorData: rejected values name the input, the expected and the got', () => {
  const cases: { name: string; sig: TensorSignature; value: unknown; want: RegExp }[] = [
    { name: 'wrong inner dim', sig: iris, value: [[1, 2, 3]], want: /input "input": expected shape \[batch, 4\], got \[1, 3\]/ },
    { name: 'missing batch dim', sig: iris, value: [1, 2, 3, 4], want: /input "input": expected shape \[batch, 4\], got \[4\] \(wrap a single sample/ },
    { name: 'ragged rows', sig: iris, value: [[1, 2, 3, 4], [1, 2]], want: /input "input": ragged nested array: \[1\] has 2 elements, expected 4/ },
    { name: 'string in a float input', sig: iris, value: [[1, 2, 'x', 4]], want: /input "input": expected float32 values, got string "x" at \[0\]\[2\]/ },
    { name: 'null in a float input', sig: iris, value: [[1, 2, null, 4]], want: /expected float32 values, got null at \[0\]\[2\]/ },
    { name: 'undefined in a float input', sig: iris, value: [[1, 2, undefined, 4]], want: /expected float32 values, got undefined at \[0\]\[2\]$/ },
    { name: 'fraction in an int64 input', sig: ids, value: [[1, 1.5, 2]], want: /input "ids": expected int64 values, got number 1.5 at \[0\]\[1\]/ },
    { name: 'unsafe number in an int64 input', sig: ids, value: [[2 ** 60, 0, 0]], want: /beyond 2\^53 \(send it as a string\)/ },
    { name: 'int8 out of range', sig: { name: 'b', dtype: 'int8', shape: [1] }, value: [300], want: /input "b": expected int8 values, got 300, outside \[-128, 127\]/ },
    { name: 'flat array not a multiple of the row', sig: iris, value: new Float32Array(6), want: /input "input": expected shape \[batch, 4\], got a flat array of 6 values/ },
    { name: 'flat array with two dynamic dims', sig: { name: 'seq', dtype: 'float32', shape: ['b', 's'] }, value: new Float32Array(6), want: /more than one dynamic dimension/ },
    { name: 'number in a bool input', sig: { name: 'm', dtype: 'bool', shape: [1] }, value: [2], want: /expected bool values, got integer 2/ },
    { name: 'number in a string input', sig: { name: 's', dtype: 'string', shape: [1] }, value: [2], want: /expected string values, got integer 2/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => toTensorData(c.sig, c.value),
        (err: unknown) => err instanceof HttpError && err.status === 400 && c.want.test(err.message),
        `want 400 matching ${c.want}`,
      );
    });
  }

  test('a dtype the engine cannot feed is a PredictorError', () => {
    assert.throws(() => toTensorData({ name: 'c', dtype: 'complex64', shape: [1] }, [1]), PredictorError);
  });
});

describe('bindInputs', () => {
  const two: TensorSignature[] = [
    { name: 'a', dtype: 'float32', shape: ['batch', 3] },
    { name: 'b', dtype: 'float32', shape: ['batch', 3] },
  ];
  test('single input: bare value or { name: value }', () => {
    for (const input of [[[1, 2, 3, 4]], { input: [[1, 2, 3, 4]] }]) {
      const [t] = bindInputs(input, [iris]);
      assert.deepEqual([...t.shape], [1, 4]);
    }
  });
  test('inputs named data and shape are a map, not a { data, shape } value', () => {
    const sigs: TensorSignature[] = [
      { name: 'data', dtype: 'float32', shape: [2] },
      { name: 'shape', dtype: 'int32', shape: [2] },
    ];
    const got = bindInputs({ data: [1, 2], shape: [3, 4] }, sigs);
    assert.deepEqual(got.map((t) => [t.name, Array.from(t.data as ArrayLike<number>)]), [['data', [1, 2]], ['shape', [3, 4]]]);
    const [single] = bindInputs({ data: [1, 2, 3, 4], shape: [1, 4] }, [iris]);
    assert.deepEqual([...single.shape], [1, 4]);
  });
  test('several inputs by name, in signature order', () => {
    const got = bindInputs({ b: [[4, 5, 6]], a: [[1, 2, 3]] }, two);
    assert.deepEqual(got.map((t) => [t.name, Array.from(t.data as Float32Array)]), [['a', [1, 2, 3]], ['b', [4, 5, 6]]]);
  });
  const bad: { name: string; input: unknown; sigs: TensorSignature[]; want: RegExp }[] = [
    { name: 'wrong key for a single input', input: { x: [[1, 2, 3, 4]] }, sigs: [iris], want: /one input "input".*keys "x"/ },
    { name: 'bare array for two inputs', input: [[1, 2, 3]], sigs: two, want: /2 inputs \(a, b\): send an object/ },
    { name: 'missing input', input: { a: [[1, 2, 3]] }, sigs: two, want: /missing input "b"/ },
    { name: 'unknown input', input: { a: [[1, 2, 3]], b: [[1, 2, 3]], c: 1 }, sigs: two, want: /unknown input "c"/ },
    { name: 'batch sizes differ', input: { a: [[1, 2, 3]], b: [[1, 2, 3], [4, 5, 6]] }, sigs: two, want: /input "b": dimension "batch" is 2, but input "a" has it as 1/ },
  ];
  for (const c of bad) {
    test(`400: ${c.name}`, () => {
      assert.throws(() => bindInputs(c.input, c.sigs), (err: unknown) => err instanceof HttpError && err.status === 400 && c.want.test(err.message));
    });
  }
});

describe('toNested', () => {
  const cases: { name: string; data: ArrayLike<unknown>; shape: number[]; dtype: string; want: unknown }[] = [
    { name: 'matrix', data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3], dtype: 'float32', want: [[1, 2, 3], [4, 5, 6]] },
    { name: 'int64 to numbers', data: new BigInt64Array([0n, 1n, -2n]), shape: [3], dtype: 'int64', want: [0, 1, -2] },
    { name: 'int64 beyond 2^53 to strings', data: new BigInt64Array([2n ** 60n]), shape: [1], dtype: 'int64', want: ['1152921504606846976'] },
    { name: 'bool bytes to booleans', data: new Uint8Array([1, 0]), shape: [2], dtype: 'bool', want: [true, false] },
    { name: 'scalar', data: new Float32Array([7]), shape: [], dtype: 'float32', want: 7 },
    { name: 'empty batch', data: new Float32Array(0), shape: [0, 3], dtype: 'float32', want: [] },
    { name: 'float16 bits', data: new Uint16Array([0x3c00, 0xc000]), shape: [2], dtype: 'float16', want: [1, -2] },
    { name: 'rank 3', data: new Int32Array([1, 2, 3, 4, 5, 6, 7, 8]), shape: [2, 2, 2], dtype: 'int32', want: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]] },
    { name: 'uint8 (not bool) as numbers', data: new Uint8Array([255, 0]), shape: [1, 2], dtype: 'uint8', want: [[255, 0]] },
    { name: 'a zero inner dimension', data: new Float32Array(0), shape: [2, 0], dtype: 'float32', want: [[], []] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(toNested(c.data, c.shape, c.dtype), c.want));
});

describe('toTensorData: non-finite numbers are refused (issue 11, defect 6)', () => {
  const refuse = (sig: TensorSignature, value: unknown, message: string): void => {
    assert.throws(
      () => toTensorData(sig, value),
      (e: unknown) => e instanceof HttpError && e.status === 400 && e.message === message,
      message,
    );
  };
  test('JSON numbers beyond float64 (1e309, 400 digits) parse to Infinity: 400 naming the input and element', () => {
    refuse(iris, JSON.parse('[[1, 2, 1e309, 4]]'), 'input "input": element [0][2] is not a finite number (Infinity: beyond ±1.8e308)');
    refuse(iris, JSON.parse(`[[1, 2, 3, 4], [5, -${'9'.repeat(400)}, 7, 8]]`), 'input "input": element [1][1] is not a finite number (-Infinity: beyond ±1.8e308)');
  });
  test('a finite number beyond float32 (1e39) would be stored as Infinity: refused', () => {
    refuse(iris, [[1, 1e39, 3, 4]], 'input "input": element [0][1] is not a finite float32 number (1e+39 is beyond the float32 range)');
  });
  test('{ data, shape }, float64, float16, int and scalar inputs', () => {
    refuse(iris, { data: [1, 2, 3, 4, 5, 6, 7, Infinity], shape: [2, 4] }, 'input "input": element [1][3] is not a finite number (Infinity: beyond ±1.8e308)');
    refuse({ name: 'x', dtype: 'float64', shape: [2] }, [0, -Infinity], 'input "x": element [1] is not a finite number (-Infinity: beyond ±1.8e308)');
    refuse({ name: 'h', dtype: 'float16', shape: [2] }, [1, 70000], 'input "h": element [1] is not a finite float16 number (70000 is beyond the float16 range)');
    refuse({ name: 'n', dtype: 'int32', shape: [1] }, [Infinity], 'input "n": element [0] is not a finite number (Infinity: beyond ±1.8e308)');
    refuse(ids, [[1, 2, Infinity]], 'input "ids": element [0][2] is not a finite number (Infinity: beyond ±1.8e308)');
    refuse({ name: 's', dtype: 'float32', shape: [] }, Infinity, 'input "s": the value is not a finite number (Infinity: beyond ±1.8e308)');
  });
  test('the largest finite values still pass', () => {
    assert.equal(toTensorData({ name: 'x', dtype: 'float64', shape: [1] }, [1.7976931348623157e308]).data[0], 1.7976931348623157e308);
    assert.equal(toTensorData({ name: 'x', dtype: 'float32', shape: [1] }, [3.4028234663852886e38]).data[0], 3.4028234663852886e38);
    assert.equal(fromHalfBits(toTensorData({ name: 'h', dtype: 'float16', shape: [1] }, [65504]).data[0] as number), 65504);
  });
  test('bindInputs refuses them too', () => {
    assert.throws(() => bindInputs({ input: JSON.parse('[[1e309, 0, 0, 0]]') }, [iris]), /input "input": element \[0\]\[0\] is not a finite number/);
  });
});
