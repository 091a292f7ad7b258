/**
 * The Python bridge's wire format, version 2 (docs/python-bridge.md): frames on two pipes (fd 3
 * replica → Python, fd 4 Python → replica). A frame is `u32 header length | u32 body length`
 * (big-endian), a UTF-8 JSON header, then the body: the header's `bufs` lists the byte length of each
 * binary part in order (request bodies, tensors, response bodies). Nothing numeric crosses as JSON
 * lists: tensors are raw little-endian buffers with a dtype and a shape.
 */
import type { TensorData, TensorDtype, TensorValues } from '../../core/predictor/tensor-data.js';

/** 2: `resolve_model`/`list_models` requests, `models_changed`, `predict_batch`/`batch_result`, `model_stats`. */
export const BRIDGE_PROTOCOL = 2;
/** Largest JSON header either side accepts (bytes). */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** Largest body (bytes): the u32 length field's limit. */
export const MAX_BODY_BYTES = 0xffff_ffff;

export interface BridgeHeader {
  readonly op: string;
  readonly [key: string]: unknown;
}

export interface BridgeFrame {
  readonly header: BridgeHeader;
  /** Binary parts of the body, in `bufs` order (views into one buffer). */
  readonly parts: readonly Buffer[];
}

/** A protocol violation by the other side (bad lengths, bad JSON): the worker is stopped. */
export class BridgeProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BridgeProtocolError';
  }
}

/** Parts up to this size (bytes, all together) are copied into the frame's one buffer: one write instead of several. */
const COPY_PARTS_BELOW = 64 * 1024;

/**
 * Encodes one frame as buffers to write in order: one buffer when the parts are small, else the
 * prefix and header followed by the parts as they are (not copied). Sets `header.bufs` (the caller's
 * object is used as is: no copy on the prediction path). Throws `BridgeProtocolError` when the header
 * or the parts exceed the protocol's limits.
 */
export function encodeFrame(header: Record<string, unknown>, parts: readonly Uint8Array[] = []): Buffer[] {
  const lengths = new Array<number>(parts.length);
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += lengths[i] = parts[i].byteLength;
  header.bufs = lengths;
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json);
  if (jsonBytes > MAX_HEADER_BYTES) throw new BridgeProtocolError(`frame header of ${jsonBytes} bytes exceeds ${MAX_HEADER_BYTES}`);
  if (total > MAX_BODY_BYTES) throw new BridgeProtocolError(`frame body of ${total} bytes exceeds ${MAX_BODY_BYTES}`);
  const small = total < COPY_PARTS_BELOW;
  const head = Buffer.allocUnsafe(8 + jsonBytes + (small ? total : 0));
  head.writeUInt32BE(jsonBytes, 0);
  head.writeUInt32BE(total, 4);
  head.write(json, 8, 'utf8');
  if (small) {
    let off = 8 + jsonBytes;
    for (const p of parts) {
      head.set(p, off);
      off += p.byteLength;
    }
    return [head];
  }
  return [head, ...parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)))];
}

/**
 * Incremental frame decoder: feed it chunks as they arrive, it calls `onFrame` for each whole frame.
 * Throws `BridgeProtocolError` on a header over the limit, bad JSON or `bufs` that do not add up.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 8;
  private headerLen = -1;
  private bodyLen = 0;

  constructor(private readonly onFrame: (frame: BridgeFrame) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= this.need) {
      if (this.headerLen < 0) {
        const prefix = this.take(8);
        this.headerLen = prefix.readUInt32BE(0);
        this.bodyLen = prefix.readUInt32BE(4);
        if (this.headerLen > MAX_HEADER_BYTES) throw new BridgeProtocolError(`frame header of ${this.headerLen} bytes exceeds ${MAX_HEADER_BYTES}`);
        this.need = this.headerLen + this.bodyLen;
        continue;
      }
      const data = this.take(this.need);
      const headerLen = this.headerLen;
      this.headerLen = -1;
      this.need = 8;
      this.onFrame(parseFrame(data, headerLen));
    }
  }

  /** Bytes of an unfinished frame still buffered (0 between frames). */
  pending(): number {
    return this.buffered;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}

function parseFrame(data: Buffer, headerLen: number): BridgeFrame {
  let header: BridgeHeader;
  try {
    header = JSON.parse(data.toString('utf8', 0, headerLen)) as BridgeHeader;
  } catch (err) {
    throw new BridgeProtocolError(`frame header is not JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || typeof header.op !== 'string') throw new BridgeProtocolError('frame header has no "op"');
  const lengths = (header.bufs ?? []) as unknown;
  if (!Array.isArray(lengths) || !lengths.every((n) => Number.isInteger(n) && n >= 0)) throw new BridgeProtocolError('frame "bufs" must be a list of byte lengths');
  const parts: Buffer[] = [];
  let off = headerLen;
  for (const n of lengths as number[]) {
    parts.push(data.subarray(off, off + n));
    off += n;
  }
  if (off !== data.length) throw new BridgeProtocolError(`frame "bufs" add up to ${off - headerLen} bytes, the body has ${data.length - headerLen}`);
  return { header, parts };
}

/** A tensor as a frame header describes it; `buf` indexes the frame's parts (absent for strings). */
export interface WireTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly buf?: number;
  readonly strings?: readonly string[];
}

const ARRAY_OF: Record<Exclude<TensorDtype, 'string'>, { new (b: ArrayBuffer, o: number, n: number): TensorValues; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
} as never;

/**
 * A wire tensor as `TensorData` (a typed array over the part's bytes, copied only when unaligned).
 * Throws `BridgeProtocolError` on an unknown dtype, a bad shape or a size that does not match.
 */
export function tensorFromWire(t: WireTensor, parts: readonly Buffer[]): TensorData {
  if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new BridgeProtocolError(`bad tensor ${JSON.stringify(t?.name)}: needs a name and a shape of non-negative integers`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === 'string') {
    if (!Array.isArray(t.strings) || t.strings.length !== n) throw new BridgeProtocolError(`tensor "${t.name}": ${n} strings expected`);
    return { name: t.name, dtype: 'string', shape: [...t.shape], data: [...t.strings] };
  }
  const Ctor = ARRAY_OF[t.dtype as Exclude<TensorDtype, 'string'>];
  if (!Ctor) throw new BridgeProtocolError(`tensor "${t.name}": unknown dtype ${t.dtype}`);
  const part = parts[t.buf ?? -1];
  if (!part) throw new BridgeProtocolError(`tensor "${t.name}": no buffer`);
  const size = Ctor.BYTES_PER_ELEMENT;
  if (part.byteLength !== n * size) throw new BridgeProtocolError(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${n * size} bytes, got ${part.byteLength}`);
  const aligned = part.byteOffset % size === 0 ? part : Buffer.from(part);
  return { name: t.name, dtype: t.dtype as TensorDtype, shape: [...t.shape], data: new Ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, n) };
}

/** `TensorData` as a wire tensor; binary data is appended to `parts`. */
export function tensorToWire(t: TensorData, parts: Uint8Array[]): WireTensor {
  if (t.dtype === 'string' || Array.isArray(t.data)) return { name: t.name, dtype: 'string', shape: [...t.shape], strings: (t.data as unknown[]).map(String) };
  const view = t.data as Exclude<TensorValues, string[]>;
  parts.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return { name: t.name, dtype: t.dtype, shape: [...t.shape], buf: parts.length - 1 };
}
