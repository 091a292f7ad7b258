/**
 * A minimal ONNX protobuf writer: enough of `onnx.proto` (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto, ValueInfoProto, TypeProto) to build small test and example models without Python or the
 * `onnx` package. Field numbers follow onnx/onnx.proto (IR version 7, opset 13 by default).
 *
 * Only encoding is implemented; onnxruntime itself validates what this writes (a wrong field number or
 * wire type makes `InferenceSession.create` fail with a parse error), so the tests that load these models
 * are the check of this file.
 */

/** ONNX `TensorProto.DataType` codes for the element types used here. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
} as const;
export type OnnxElemType = keyof typeof OnnxDataType;

/** A dimension: a fixed size, or a symbolic name (`'batch'`) for a dynamic one. */
export type OnnxDim = number | string;

export interface OnnxValueInfo {
  readonly name: string;
  readonly elemType: OnnxElemType;
  /** Omit for a tensor of unknown rank. */
  readonly shape?: readonly OnnxDim[];
}

export type OnnxAttributeValue =
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: OnnxInitializer };

export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attributes?: Readonly<Record<string, OnnxAttributeValue>>;
}

/** A constant tensor (weights); `data` is written as `raw_data` (little-endian). */
export interface OnnxInitializer {
  readonly name: string;
  readonly elemType: 'float32' | 'int64' | 'int32' | 'float64';
  readonly dims: readonly number[];
  readonly data: readonly number[] | Float32Array | Float64Array | Int32Array | BigInt64Array;
}

export interface OnnxModelDef {
  readonly graphName: string;
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly nodes: readonly OnnxNode[];
  readonly initializers?: readonly OnnxInitializer[];
  /** Default 13. */
  readonly opset?: number;
  /** Default 7 (the IR version that goes with opset 13). */
  readonly irVersion?: number;
  readonly producerName?: string;
  readonly docString?: string;
}

/** Protobuf wire writer: varints, length-delimited fields, fixed32. */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  private varint(v: bigint): void {
    // Negative int64 values are written as 10-byte two's complement varints, as protobuf does.
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.push(Uint8Array.from(out));
  }
  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, w: ProtoWriter): this {
    return this.bytes(field, w.finish());
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  /** Packed repeated int64 (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(BigInt(v));
    return this.bytes(field, inner.finish());
  }
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function rawData(t: OnnxInitializer): Uint8Array {
  const n = t.data.length;
  switch (t.elemType) {
    case 'float32':
      return new Uint8Array(Float32Array.from(t.data as ArrayLike<number>).buffer);
    case 'float64':
      return new Uint8Array(Float64Array.from(t.data as ArrayLike<number>).buffer);
    case 'int32':
      return new Uint8Array(Int32Array.from(t.data as ArrayLike<number>).buffer);
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(t.data[i] as number | bigint);
      return new Uint8Array(a.buffer);
    }
  }
}

function tensorProto(t: OnnxInitializer): ProtoWriter {
  const product = t.dims.reduce((a, b) => a * b, 1);
  if (product !== t.data.length) {
    throw new RangeError(`initializer ${t.name}: dims [${t.dims.join(',')}] hold ${product} values, got ${t.data.length}`);
  }
  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9.
  return new ProtoWriter().packedInts(1, t.dims).int(2, OnnxDataType[t.elemType]).string(8, t.name).bytes(9, rawData(t));
}

function valueInfo(v: OnnxValueInfo): ProtoWriter {
  // TypeProto.Tensor: elem_type = 1, shape = 2; TensorShapeProto: dim = 1; Dimension: dim_value = 1, dim_param = 2.
  const tensorType = new ProtoWriter().int(1, OnnxDataType[v.elemType]);
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  // ValueInfoProto: name = 1, type = 2; TypeProto: tensor_type = 1.
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

function attribute(name: string, a: OnnxAttributeValue): ProtoWriter {
  // AttributeProto: name = 1, f = 2, i = 3, s = 4, t = 5, floats = 7, ints = 8, type = 20.
  const w = new ProtoWriter().string(1, name);
  switch (a.kind) {
    case 'float':
      return w.float(2, a.value).int(20, 1);
    case 'int':
      return w.int(3, a.value).int(20, 2);
    case 'string':
      return w.string(4, a.value).int(20, 3);
    case 'tensor':
      return w.message(5, tensorProto(a.value)).int(20, 4);
    case 'floats':
      return w.packedFloats(7, a.value).int(20, 6);
    case 'ints':
      return w.packedInts(8, a.value).int(20, 7);
  }
}

function nodeProto(n: OnnxNode, index: number): ProtoWriter {
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name ?? `${n.opType.toLowerCase()}_${index}`).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attribute(k, v));
  return w;
}

/** Encodes a model as the bytes of an `.onnx` file. */
export function encodeOnnxModel(m: OnnxModelDef): Uint8Array {
  // GraphProto: node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12.
  const graph = new ProtoWriter();
  m.nodes.forEach((n, i) => graph.message(1, nodeProto(n, i)));
  graph.string(2, m.graphName);
  for (const t of m.initializers ?? []) graph.message(5, tensorProto(t));
  if (m.docString) graph.string(10, m.docString);
  for (const v of m.inputs) graph.message(11, valueInfo(v));
  for (const v of m.outputs) graph.message(12, valueInfo(v));
  // ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, graph = 7, opset_import = 8
  // (OperatorSetIdProto: domain = 1, version = 2; the default domain is the empty string).
  return new ProtoWriter()
    .int(1, m.irVersion ?? 7)
    .string(2, m.producerName ?? 'myelin-test-harness')
    .string(3, '1')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, m.opset ?? 13))
    .finish();
}
