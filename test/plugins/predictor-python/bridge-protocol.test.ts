// The bridge's wire format (bridge-protocol.ts): frames survive any chunking, protocol violations throw
// BridgeProtocolError, tensors of every dtype round-trip (aligned or not); and the Python side
// (myelin_bridge.Channel, in a real python3 process) reads what Node writes and writes what Node reads.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import {
  BridgeProtocolError,
  FrameDecoder,
  MAX_HEADER_BYTES,
  encodeFrame,
  tensorFromWire,
  tensorToWire,
  type BridgeFrame,
  type WireTensor,
} from '../../../plugins/predictor-python/bridge-protocol.js';
import type { TensorData } from '../../../core/predictor/tensor-data.js';
import { BRIDGE_DIR, PYTHON } from './python-test-kit.js';

function decodeAll(chunks: readonly Buffer[]): BridgeFrame[] {
  const frames: BridgeFrame[] = [];
  const decoder = new FrameDecoder((f) => frames.push(f));
  for (const c of chunks) decoder.push(c);
  assert.equal(decoder.pending(), 0, 'nothing left over after whole frames');
  return frames;
}

/** A frame as plain data, to compare decodings. */
function plain(f: BridgeFrame): { header: unknown; parts: number[][] } {
  return { header: f.header, parts: f.parts.map((p) => [...p]) };
}

function prefix(headerLen: number, bodyLen: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(headerLen, 0);
  b.writeUInt32BE(bodyLen, 4);
  return b;
}

function rawFrame(headerJson: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.from(headerJson, 'utf8');
  return Buffer.concat([prefix(h.length, body.length), h, body]);
}

describe('bridge frames', () => {
  const header = { op: 'predict', id: 7, payload: { kind: 'json', buf: 0 }, text: 'héllo ✓' };
  const parts = [Buffer.from('{"x": 1.0}'), new Uint8Array([0, 1, 2, 255]), Buffer.alloc(0)];
  const bytes = Buffer.concat(encodeFrame(header, parts));
  const want = { header: { ...header, bufs: [10, 4, 0] }, parts: parts.map((p) => [...p]) };

  test('encodes `u32 header length | u32 body length | JSON | parts` (big-endian)', () => {
    const json = JSON.stringify({ ...header, bufs: [10, 4, 0] });
    assert.equal(bytes.readUInt32BE(0), Buffer.byteLength(json));
    assert.equal(bytes.readUInt32BE(4), 14);
    assert.equal(bytes.toString('utf8', 8, 8 + Buffer.byteLength(json)), json);
    assert.equal(bytes.length, 8 + Buffer.byteLength(json) + 14);
  });

  test('a frame split at every byte boundary decodes identically', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const got = decodeAll([bytes.subarray(0, i), bytes.subarray(i)]).map(plain);
      assert.deepEqual(got, [want], `split at byte ${i}`);
    }
  });

  test('one byte at a time, and three frames in one chunk', () => {
    const single = decodeAll([...bytes].map((b) => Buffer.from([b]))).map(plain);
    assert.deepEqual(single, [want]);
    const three = decodeAll([Buffer.concat([bytes, bytes, bytes])]).map(plain);
    assert.deepEqual(three, [want, want, want]);
  });

  test('every split of two frames in a row gives both', () => {
    const two = Buffer.concat([bytes, Buffer.concat(encodeFrame({ op: 'log', msg: 'x' }))]);
    for (let i = 0; i <= two.length; i += 3) {
      const got = decodeAll([two.subarray(0, i), two.subarray(i)]);
      assert.deepEqual(
        got.map((f) => f.header.op),
        ['predict', 'log'],
        `split at ${i}`,
      );
    }
  });

  test('pending() counts the bytes of an unfinished frame', () => {
    const decoder = new FrameDecoder(() => {});
    decoder.push(bytes.subarray(0, 20));
    assert.ok(decoder.pending() > 0, `mid-frame: ${decoder.pending()}`);
    decoder.push(bytes.subarray(20));
    assert.equal(decoder.pending(), 0);
  });

  const violations: { name: string; chunk: Buffer; want: RegExp }[] = [
    { name: 'a header over the limit', chunk: prefix(MAX_HEADER_BYTES + 1, 0), want: /frame header of 67108865 bytes exceeds 67108864/ },
    { name: 'a header that is not JSON', chunk: rawFrame('{"op": "predict",'), want: /frame header is not JSON/ },
    { name: 'a header without op', chunk: rawFrame('{"id": 1}'), want: /frame header has no "op"/ },
    { name: 'a header that is a JSON list', chunk: rawFrame('[1, 2]'), want: /frame header has no "op"/ },
    { name: 'bufs that is not a list', chunk: rawFrame('{"op": "x", "bufs": 3}', Buffer.alloc(3)), want: /"bufs" must be a list of byte lengths/ },
    { name: 'a negative buf length', chunk: rawFrame('{"op": "x", "bufs": [-1]}'), want: /"bufs" must be a list of byte lengths/ },
    { name: 'a fractional buf length', chunk: rawFrame('{"op": "x", "bufs": [1.5]}', Buffer.alloc(2)), want: /"bufs" must be a list of byte lengths/ },
    { name: 'bufs adding up to less than the body', chunk: rawFrame('{"op": "x", "bufs": [2]}', Buffer.alloc(5)), want: /"bufs" add up to 2 bytes, the body has 5/ },
    { name: 'bufs adding up to more than the body', chunk: rawFrame('{"op": "x", "bufs": [4, 4]}', Buffer.alloc(5)), want: /"bufs" add up to 8 bytes, the body has 5/ },
    { name: 'a body without bufs', chunk: rawFrame('{"op": "x"}', Buffer.alloc(1)), want: /"bufs" add up to 0 bytes, the body has 1/ },
  ];
  for (const c of violations) {
    test(`decoding ${c.name} throws BridgeProtocolError`, () => {
      const decoder = new FrameDecoder(() => assert.fail('no frame expected'));
      assert.throws(
        () => decoder.push(c.chunk),
        (err: unknown) => err instanceof BridgeProtocolError && err.name === 'BridgeProtocolError' && c.want.test(err.message),
      );
    });
  }

  test('encoding a header over the limit throws BridgeProtocolError', () => {
    assert.throws(() => encodeFrame({ op: 'x', big: 'x'.repeat(MAX_HEADER_BYTES) }), BridgeProtocolError);
  });
});

/** One tensor of each dtype with values that use the type's range. */
const tensors: TensorData[] = [
  { name: 'f32', dtype: 'float32', shape: [2, 2], data: new Float32Array([0.5, -1.25, 3.4028234663852886e38, Number.NaN]) },
  { name: 'f64', dtype: 'float64', shape: [3], data: new Float64Array([Math.PI, -0, Number.MAX_VALUE]) },
  { name: 'f16', dtype: 'float16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
  { name: 'i8', dtype: 'int8', shape: [3], data: new Int8Array([-128, 0, 127]) },
  { name: 'i16', dtype: 'int16', shape: [3], data: new Int16Array([-32768, 1, 32767]) },
  { name: 'i32', dtype: 'int32', shape: [1, 3], data: new Int32Array([-2147483648, 0, 2147483647]) },
  { name: 'i64', dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
  { name: 'u8', dtype: 'uint8', shape: [3], data: new Uint8Array([0, 128, 255]) },
  { name: 'u16', dtype: 'uint16', shape: [2], data: new Uint16Array([0, 65535]) },
  { name: 'u32', dtype: 'uint32', shape: [2], data: new Uint32Array([0, 4294967295]) },
  { name: 'u64', dtype: 'uint64', shape: [2], data: new BigUint64Array([0n, 2n ** 64n - 1n]) },
  { name: 'bool', dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
  { name: 'empty', dtype: 'float32', shape: [0, 4], data: new Float32Array(0) },
  { name: 'scalar', dtype: 'int32', shape: [], data: new Int32Array([42]) },
  { name: 'str', dtype: 'string', shape: [2], data: ['héllo', ''] },
];

function valuesOf(t: TensorData): unknown[] {
  return Array.from(t.data as ArrayLike<unknown>);
}

describe('bridge tensors', () => {
  for (const t of tensors) {
    test(`${t.dtype} ${JSON.stringify(t.shape)} round-trips through a frame`, () => {
      // A 1-byte part first shifts the tensor's bytes to an odd offset inside the decoded body.
      const parts: Uint8Array[] = [new Uint8Array([9])];
      const wire = tensorToWire(t, parts);
      const [frame] = decodeAll([Buffer.concat(encodeFrame({ op: 'model_result', outputs: [wire] }, parts))]);
      const got = tensorFromWire((frame.header.outputs as WireTensor[])[0], frame.parts);
      assert.deepEqual([got.name, got.dtype, got.shape], [t.name, t.dtype, t.shape]);
      assert.equal(got.data.constructor, t.data.constructor);
      assert.deepEqual(valuesOf(got), valuesOf(t));
      if (!Array.isArray(got.data)) {
        const view = got.data as unknown as { byteOffset: number; BYTES_PER_ELEMENT: number };
        assert.equal(view.byteOffset % view.BYTES_PER_ELEMENT, 0, 'a typed array view is aligned (copied when it was not)');
      }
    });
  }

  test('unaligned buffers of every multi-byte dtype are copied, aligned ones are views', () => {
    for (const t of tensors.filter((x) => !Array.isArray(x.data) && (x.data as Uint8Array).BYTES_PER_ELEMENT > 1)) {
      const src = t.data as Exclude<TensorData['data'], string[]>;
      const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
      const odd = Buffer.alloc(bytes.length + 1).subarray(1);
      odd.set(bytes);
      const wire: WireTensor = { name: t.name, dtype: t.dtype, shape: t.shape, buf: 0 };
      const got = tensorFromWire(wire, [odd]);
      assert.deepEqual(valuesOf(got), valuesOf(t), t.dtype);
      assert.notEqual((got.data as Uint8Array).buffer, odd.buffer, `${t.dtype}: copied`);
      const aligned = Buffer.from(bytes);
      if (aligned.byteOffset % src.BYTES_PER_ELEMENT === 0) {
        assert.equal((tensorFromWire(wire, [aligned]).data as Uint8Array).buffer, aligned.buffer, `${t.dtype}: a view, no copy`);
      }
    }
  });

  const bad: { name: string; wire: WireTensor; parts: Buffer[]; want: RegExp }[] = [
    { name: 'unknown dtype', wire: { name: 'x', dtype: 'complex64', shape: [1], buf: 0 }, parts: [Buffer.alloc(8)], want: /tensor "x": unknown dtype complex64/ },
    { name: 'too few bytes', wire: { name: 'x', dtype: 'float32', shape: [2, 2], buf: 0 }, parts: [Buffer.alloc(12)], want: /shape \[2,2\] of float32 needs 16 bytes, got 12/ },
    { name: 'no buffer', wire: { name: 'x', dtype: 'int32', shape: [1], buf: 3 }, parts: [Buffer.alloc(4)], want: /tensor "x": no buffer/ },
    { name: 'negative dim', wire: { name: 'x', dtype: 'int32', shape: [-1], buf: 0 }, parts: [Buffer.alloc(4)], want: /shape of non-negative integers/ },
    { name: 'strings count', wire: { name: 's', dtype: 'string', shape: [3], strings: ['a'] }, parts: [], want: /tensor "s": 3 strings expected/ },
  ];
  for (const c of bad) {
    test(`tensorFromWire: ${c.name} throws BridgeProtocolError`, () => {
      assert.throws(() => tensorFromWire(c.wire, c.parts), (err: unknown) => err instanceof BridgeProtocolError && c.want.test(err.message));
    });
  }
});

describe('bridge frames across languages (myelin_bridge.Channel in python3)', () => {
  test('Python reads frames Node encoded, whatever the chunking of the pipe', () => {
    const frames = Buffer.concat([
      ...encodeFrame({ op: 'predict', id: 1, note: 'é' }, [Buffer.from('abc'), new Uint8Array([0, 255])]),
      ...encodeFrame({ op: 'shutdown' }),
    ]);
    const script = [
      'import json, sys',
      `sys.path.insert(0, ${JSON.stringify(BRIDGE_DIR)})`,
      'import myelin_bridge as b',
      'ch = b.Channel(0, 1)',
      'out = []',
      'while True:',
      '    f = ch.read()',
      '    if f is None: break',
      '    h, parts = f',
      '    out.append([h, [list(bytes(p)) for p in parts]])',
      'print(json.dumps(out))',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', script], { input: frames });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.deepEqual(JSON.parse(r.stdout.toString()), [
      [{ op: 'predict', id: 1, note: 'é', bufs: [3, 2] }, [[97, 98, 99], [0, 255]]],
      [{ op: 'shutdown', bufs: [] }, []],
    ]);
  });

  test('Node decodes frames Python sent (numpy values in the header as JSON)', () => {
    const script = [
      'import os, sys',
      `sys.path.insert(0, ${JSON.stringify(BRIDGE_DIR)})`,
      'import myelin_bridge as b',
      'ch = b.Channel(os.open(os.devnull, os.O_RDONLY), 1)',
      'ch.send({"op": "result", "id": 3, "set": {2}}, [b"xyz", bytearray(b"\\x00\\x01")])',
      'ch.send({"op": "log", "msg": "é"})',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', script]);
    assert.equal(r.status, 0, r.stderr.toString());
    const got = decodeAll([r.stdout]).map(plain);
    assert.deepEqual(got, [
      { header: { op: 'result', id: 3, set: [2], bufs: [3, 2] }, parts: [[120, 121, 122], [0, 1]] },
      { header: { op: 'log', msg: 'é', bufs: [] }, parts: [] },
    ]);
  });
});
