/**
 * The graph inputs of an `.onnx` file (names and shapes), read without onnxruntime and without reading
 * the weights: a minimal protobuf walk over the file with positional reads that skips every large
 * field (initializer data, node attributes). The daemon uses it at deploy to check a model's batch
 * dimension against `server_side_batching` before any replica starts.
 *
 * Fields used (onnx.proto3): ModelProto.graph = 7; GraphProto.initializer = 5, input = 11;
 * TensorProto.name = 8; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
 * TypeProto.Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1, dim_param = 2.
 * Inputs that are also initializers (older exporters list weights as inputs) are left out.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { PredictorError } from '../../core/errors.js';

export interface OnnxInput {
  readonly name: string;
  /** A number per fixed dimension, the name of a symbolic one, -1 when neither is given. */
  readonly shape: ReadonlyArray<number | string>;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** The file is not a protobuf an ONNX model can be: `PredictorError` `ENG_PREDICTOR_MODEL_INVALID`. */
function malformed(r: FileReader, what: string, pos: number): PredictorError {
  return new PredictorError(`${r.path}: not a readable ONNX model: ${what} at byte ${pos}`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
}

class FileReader {
  private buf = Buffer.alloc(64 * 1024);
  private bufStart = 0;
  private bufLen = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  private async fill(pos: number, need: number): Promise<void> {
    if (pos >= this.bufStart && pos + need <= this.bufStart + this.bufLen) return;
    if (need > this.buf.length) this.buf = Buffer.alloc(need);
    const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, pos);
    this.bufStart = pos;
    this.bufLen = bytesRead;
    if (bytesRead < Math.min(need, this.size - pos)) throw malformed(this, 'short read', pos);
  }

  async varint(pos: number): Promise<{ value: number; next: number }> {
    await this.fill(pos, Math.min(10, this.size - pos));
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos + i >= this.size) throw malformed(this, 'truncated varint', pos);
      const b = this.buf[pos + i - this.bufStart];
      value += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return { value, next: pos + i + 1 };
    }
    throw malformed(this, 'varint too long', pos);
  }

  async bytes(pos: number, len: number): Promise<Buffer> {
    await this.fill(pos, len);
    return Buffer.from(this.buf.subarray(pos - this.bufStart, pos - this.bufStart + len));
  }
}

interface Field {
  readonly no: number;
  readonly wire: number;
  /** Varint value, or the payload length for length-delimited fields. */
  readonly value: number;
  /** Where the payload starts (length-delimited) or the next field starts. */
  readonly start: number;
  readonly end: number;
}

/** Every field of the message spanning [from, to), payloads skipped. */
async function* fields(r: FileReader, from: number, to: number): AsyncGenerator<Field> {
  let pos = from;
  while (pos < to) {
    const key = await r.varint(pos);
    const no = Math.floor(key.value / 8);
    const wire = key.value % 8;
    if (wire === WIRE_VARINT) {
      const v = await r.varint(key.next);
      yield { no, wire, value: v.value, start: key.next, end: v.next };
      pos = v.next;
    } else if (wire === WIRE_LEN) {
      const len = await r.varint(key.next);
      const end = len.next + len.value;
      if (end > to) throw malformed(r, 'a field runs past its message', pos);
      yield { no, wire, value: len.value, start: len.next, end };
      pos = end;
    } else if (wire === WIRE_I64) pos = key.next + 8;
    else if (wire === WIRE_I32) pos = key.next + 4;
    else throw malformed(r, `unsupported wire type ${wire}`, pos);
  }
}

async function stringField(r: FileReader, f: Field): Promise<string> {
  return (await r.bytes(f.start, f.value)).toString('utf8');
}

async function valueInfo(r: FileReader, f: Field): Promise<OnnxInput | undefined> {
  let name = '';
  let shape: Array<number | string> | undefined;
  for await (const v of fields(r, f.start, f.end)) {
    if (v.no === 1 && v.wire === WIRE_LEN) name = await stringField(r, v);
    if (v.no !== 2 || v.wire !== WIRE_LEN) continue;
    for await (const t of fields(r, v.start, v.end)) {
      if (t.no !== 1 || t.wire !== WIRE_LEN) continue; // only tensor types have a shape to check
      for await (const tt of fields(r, t.start, t.end)) {
        if (tt.no !== 2 || tt.wire !== WIRE_LEN) continue;
        shape = [];
        for await (const d of fields(r, tt.start, tt.end)) {
          if (d.no !== 1 || d.wire !== WIRE_LEN) continue;
          let dim: number | string = -1;
          for await (const x of fields(r, d.start, d.end)) {
            if (x.no === 1 && x.wire === WIRE_VARINT) dim = x.value;
            if (x.no === 2 && x.wire === WIRE_LEN) dim = await stringField(r, x);
          }
          shape.push(dim);
        }
      }
    }
  }
  return name ? { name, shape: shape ?? [] } : undefined;
}

/**
 * The graph inputs of an `.onnx` file. Throws `PredictorError` `ENG_PREDICTOR_MODEL_INVALID` when the file
 * is not a readable ONNX model (and the file system's error when it cannot be opened).
 */
export async function readOnnxInputs(path: string): Promise<OnnxInput[]> {
  const fh = await open(path, 'r');
  try {
    const r = new FileReader(fh, path, (await fh.stat()).size);
    const inputs: OnnxInput[] = [];
    const initializers = new Set<string>();
    for await (const m of fields(r, 0, r.size)) {
      if (m.no !== 7 || m.wire !== WIRE_LEN) continue;
      for await (const g of fields(r, m.start, m.end)) {
        if (g.wire !== WIRE_LEN) continue;
        if (g.no === 11) {
          const vi = await valueInfo(r, g);
          if (vi) inputs.push(vi);
        } else if (g.no === 5) {
          for await (const t of fields(r, g.start, g.end)) if (t.no === 8 && t.wire === WIRE_LEN) initializers.add(await stringField(r, t));
        }
      }
    }
    return inputs.filter((i) => !initializers.has(i.name));
  } finally {
    await fh.close();
  }
}
