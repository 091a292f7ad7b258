/**
 * The metric sample's compact binary encoding (layout 1), what the NATS transport puts on the wire.
 * The logical format stays `config-schemas/metric-sample.schema.json` (v1): this is only its bytes,
 * and a decoded sample passes the same check (`isMetricSample`) as a JSON one.
 *
 * Why: JSON cost ~3 µs to encode and ~3 µs to parse per sample, which kept the NATS path at ~0.3 of
 * raw pub/sub (docs/transports.md#wire-encoding has the figures). This layout encodes in ~0.12 µs and
 * decodes and validates in ~0.26 µs, and is about half the size (~120–135 bytes for a typical sample, against ~250–260).
 *
 * Layout 1, little-endian; every number is an IEEE-754 float64 (exact for the schema's integers up to
 * 2^53), strings are UTF-8:
 * ```
 * offset  size  field
 *  0      1     magic 0xB5: never the first byte of JSON text, so a reader tells the two apart
 *  1      1     layout version: 1 (another value is refused, `malformed`, naming it)
 *  2      1     flags: bit 0 ready, bit 1 cpuUtilization present, bits 2–3 monitoring
 *               (0 none, 1 classification, 2 regression); bits 4–7 must be 0
 *  3      1     byte length of api (≤ 63: a DNS label is ASCII)
 *  4      2     byte length of replica (u16)
 *  6      2     byte length of revision (u16)
 *  8      80    seq, t, intervalMs, inFlight, inFlightMax, requests 2xx, 4xx, 5xx, latencyMsSum,
 *               cpuUtilization (0 and ignored unless flag bit 1)
 * 88      …     api, replica, revision bytes
 *  …            monitoring, regression: count, min, max, sum (4 × float64);
 *               classification: u16 number of classes, then per class u16 name length, name, float64 count
 * ```
 * Pure and synchronous; decoding never throws.
 */
import { isUtf8 } from 'node:buffer';
import { MAX_METRIC_SAMPLE_BYTES, type MetricSample, type MonitoringSample } from './metric-sample.js';
import {
  decodeMetricSample,
  explainInvalidMetricSample,
  isApiName,
  isInt0,
  isMonitoring,
  isNum0,
  isStr,
  type DecodeResult,
} from './metric-sample-validator.js';

/** First byte of a binary sample. JSON text starts with `{` or whitespace (or a BOM, 0xEF), never this. */
export const METRIC_SAMPLE_MAGIC = 0xb5;
/** The layout version this build writes and reads. */
export const METRIC_SAMPLE_LAYOUT = 1;
/** Bytes before the strings: header (8) + 10 float64 fields. */
const FIXED = 88;

const FLAG_READY = 1;
const FLAG_CPU = 2;
const MON_SHIFT = 2;
const MON_CLASSIFICATION = 1;
const MON_REGRESSION = 2;
const FLAG_KNOWN = 0b1111;

/** UTF-8 byte length of `s`; a plain loop, cheaper than Buffer.byteLength for the short ASCII ids here. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  }
  return s.length;
}

/** Writes `s` (of `len` UTF-8 bytes) at `off`; ASCII byte by byte, anything else through Buffer.write. */
function writeString(buf: Buffer, off: number, s: string, len: number): number {
  if (len === s.length) {
    for (let i = 0; i < len; i++) buf[off + i] = s.charCodeAt(i);
  } else {
    buf.write(s, off, len, 'utf8');
  }
  return off + len;
}

// The float64 fields go through one scratch Float64Array: one memcpy of its 80 bytes per message,
// several times cheaper than Buffer's readDoubleLE/writeDoubleLE, which check bounds per call. The
// typed array is in platform order, so a big-endian host takes the per-field path instead.
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const F64 = new Float64Array(10);
const F64_BYTES = new Uint8Array(F64.buffer);

/**
 * The three ids of a replica's samples, encoded once: a replica sends the same api, replica and
 * revision every interval, so they are encoded on its first sample and copied after. Keyed by the
 * replica id; at most `ID_CACHE_MAX` replicas (then it starts over), so a publisher of many replicas
 * (a benchmark, a relay) stays bounded.
 */
interface EncodedIds {
  readonly api: string;
  readonly revision: string;
  readonly bytes: Buffer;
  readonly apiLen: number;
  readonly replicaLen: number;
  readonly revisionLen: number;
}
const ID_CACHE_MAX = 4096;
const idCache = new Map<string, EncodedIds>();

function encodedIds(s: MetricSample): EncodedIds {
  const hit = idCache.get(s.replica);
  if (hit !== undefined && hit.api === s.api && hit.revision === s.revision) return hit;
  const apiLen = utf8Length(s.api);
  const replicaLen = utf8Length(s.replica);
  const revisionLen = utf8Length(s.revision);
  if (apiLen > 255 || replicaLen > 0xffff || revisionLen > 0xffff) throw new RangeError('metric sample string too long for layout 1');
  const bytes = Buffer.allocUnsafeSlow(apiLen + replicaLen + revisionLen);
  writeString(bytes, writeString(bytes, writeString(bytes, 0, s.api, apiLen), s.replica, replicaLen), s.revision, revisionLen);
  const ids = { api: s.api, revision: s.revision, bytes, apiLen, replicaLen, revisionLen };
  if (idCache.size >= ID_CACHE_MAX) idCache.clear();
  idCache.set(s.replica, ids);
  return ids;
}

/**
 * A DataView over `bytes`' whole ArrayBuffer, kept for the next message: nats.js hands out the
 * messages of one socket read as views into one buffer, so most messages reuse it. Reading the ten
 * float64 fields through it costs ~40 ns, against ~120 ns for the byte loop into a scratch array it
 * replaced and ~110 ns for Buffer#readDoubleLE (benchmarks/nats-metrics.bench.ts, hot path). Holds on
 * to at most that one buffer.
 */
let viewedBuffer: ArrayBufferLike | undefined;
let view: DataView | undefined;
function viewOf(bytes: Uint8Array): DataView {
  if (bytes.buffer !== viewedBuffer || view === undefined) {
    viewedBuffer = bytes.buffer;
    view = new DataView(bytes.buffer);
  }
  return view;
}

/** `bytes` as a Buffer over the same memory (nats.js hands out Buffers already; a plain Uint8Array is wrapped, not copied). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// Buffer#utf8Slice is what Buffer#toString('utf8', start, end) ends in, without its argument
// handling (a third of the cost for ids this short); toString where a runtime lacks it.
const nativeUtf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Buffer, start: number, end: number) => string }).utf8Slice;
function utf8Slice(b: Buffer, start: number, end: number): string {
  return nativeUtf8Slice !== undefined ? nativeUtf8Slice.call(b, start, end) : b.toString('utf8', start, end);
}

/**
 * The UTF-8 text of `b[start, end)`, or undefined when it is not valid UTF-8. Decoding replaces a bad
 * sequence with U+FFFD, so only text containing U+FFFD needs the strict check (a real U+FFFD passes it).
 */
function utf8At(b: Buffer, start: number, end: number): string | undefined {
  const s = utf8Slice(b, start, end);
  if (s.includes('\uFFFD') && !isUtf8(b.subarray(start, end))) return undefined;
  return s;
}

// What `measure` found for the sample `writeAt` writes next (the two are always called back to back).
let mIds: EncodedIds;
let mMon = 0;
let mNames: string[] | undefined;
let mNameLens: number[] | undefined;

/** The layout-1 byte length of `s`, remembering what `writeAt` needs. Throws `RangeError` past the layout's limits. */
function measure(s: MetricSample): number {
  mIds = encodedIds(s);
  const m = s.monitoring;
  let monBytes = 0;
  mMon = 0;
  mNames = undefined;
  mNameLens = undefined;
  if (m !== undefined) {
    if (m.modelType === 'regression') {
      mMon = MON_REGRESSION;
      monBytes = 32;
    } else {
      mMon = MON_CLASSIFICATION;
      const names = Object.keys(m.classes);
      if (names.length > 0xffff) throw new RangeError('too many classes for layout 1');
      const nameLens = names.map(utf8Length);
      monBytes = 2;
      for (const n of nameLens) {
        if (n > 0xffff) throw new RangeError('class name too long for layout 1');
        monBytes += 10 + n;
      }
      mNames = names;
      mNameLens = nameLens;
    }
  }
  return FIXED + mIds.bytes.length + monBytes;
}

/** Writes `s`, just measured, at `off` of `buf` (which has room); returns the offset after it. */
function writeAt(buf: Buffer, off: number, s: MetricSample): number {
  const ids = mIds;
  const cpu = s.cpuUtilization !== undefined;
  buf[off] = METRIC_SAMPLE_MAGIC;
  buf[off + 1] = METRIC_SAMPLE_LAYOUT;
  buf[off + 2] = (s.ready ? FLAG_READY : 0) | (cpu ? FLAG_CPU : 0) | (mMon << MON_SHIFT);
  buf[off + 3] = ids.apiLen;
  buf[off + 4] = ids.replicaLen & 0xff;
  buf[off + 5] = ids.replicaLen >>> 8;
  buf[off + 6] = ids.revisionLen & 0xff;
  buf[off + 7] = ids.revisionLen >>> 8;
  const r = s.requests;
  F64[0] = s.seq;
  F64[1] = s.t;
  F64[2] = s.intervalMs;
  F64[3] = s.inFlight;
  F64[4] = s.inFlightMax;
  F64[5] = r['2xx'];
  F64[6] = r['4xx'];
  F64[7] = r['5xx'];
  F64[8] = s.latencyMsSum;
  F64[9] = cpu ? s.cpuUtilization! : 0;
  if (LE) buf.set(F64_BYTES, off + 8);
  else for (let i = 0; i < 10; i++) buf.writeDoubleLE(F64[i], off + 8 + i * 8);
  buf.set(ids.bytes, off + FIXED);
  let at = off + FIXED + ids.bytes.length;
  const m = s.monitoring;
  if (m !== undefined) {
    if (m.modelType === 'regression') {
      buf.writeDoubleLE(m.count, at);
      buf.writeDoubleLE(m.min, at + 8);
      buf.writeDoubleLE(m.max, at + 16);
      buf.writeDoubleLE(m.sum, at + 24);
      at += 32;
    } else {
      const names = mNames!;
      const nameLens = mNameLens!;
      buf.writeUInt16LE(names.length, at);
      at += 2;
      for (let i = 0; i < names.length; i++) {
        buf.writeUInt16LE(nameLens[i], at);
        at = writeString(buf, at + 2, names[i], nameLens[i]);
        buf.writeDoubleLE(m.classes[names[i]], at);
        at += 8;
      }
    }
  }
  return at;
}

/**
 * The sample in layout 1. The caller validates first (`isMetricSample`); lengths beyond the schema's
 * (a replica id over 65 535 bytes) throw `RangeError` rather than write a wrong message.
 */
export function encodeMetricSampleBinary(s: MetricSample): Buffer {
  const buf = Buffer.allocUnsafe(measure(s));
  writeAt(buf, 0, s);
  return buf;
}

/** First byte of a batch frame: several layout-1 samples in one message. */
export const METRIC_SAMPLE_BATCH_MAGIC = 0xb6;
/** Magic, version, u16 count. */
const BATCH_HEADER = 4;
/** Where a batch frame starts; it doubles up to the message limit as samples are added. */
const BATCH_INITIAL_BYTES = 4096;

/**
 * Coalesces the samples published to one subject into as few messages as fit: a single sample stays a
 * plain layout-1 message (what a replica sends once per interval), two or more become **batch frames**
 * of at most `limit` bytes (`MAX_METRIC_SAMPLE_BYTES`, what a receiver accepts):
 * ```
 * offset  size  field
 *  0      1     magic 0xB6
 *  1      1     version: 1 (the samples inside are layout 1)
 *  2      2     number of samples (u16, ≥ 1)
 *  4      …     per sample: its byte length (u16), then the layout-1 sample
 * ```
 * `send(message, samples)` is called with each finished message, in the order the samples were added:
 * from `add` when a sample does not fit in the frame being filled, and from `flush`. Samples are
 * encoded as they are added (the caller validates first, as for `encodeMetricSampleBinary`).
 */
export class MetricSampleBatchEncoder {
  private single: Buffer | undefined;
  private frame: Buffer | undefined;
  private off = 0;
  private count = 0;

  constructor(
    private readonly send: (message: Buffer, samples: number) => void,
    private readonly limit = MAX_METRIC_SAMPLE_BYTES,
  ) {}

  /** Samples added and not yet sent. */
  get pending(): number {
    return this.count;
  }

  /** Encodes `s` into the message being built. Throws `RangeError` as `encodeMetricSampleBinary` does. */
  add(s: MetricSample): void {
    const len = measure(s);
    if (this.count > 0) {
      if (this.frame === undefined) {
        const first = this.single!;
        if (BATCH_HEADER + 4 + first.length + len <= this.limit) {
          this.frame = Buffer.allocUnsafe(Math.min(this.limit, Math.max(BATCH_INITIAL_BYTES, 2 * (BATCH_HEADER + 4 + first.length + len))));
          this.frame[BATCH_HEADER] = first.length & 0xff;
          this.frame[BATCH_HEADER + 1] = first.length >>> 8;
          this.frame.set(first, BATCH_HEADER + 2);
          this.off = BATCH_HEADER + 2 + first.length;
          this.single = undefined;
        } else this.flush();
      } else if (this.off + 2 + len > this.limit) this.flush();
    }
    if (this.count === 0) {
      this.single = Buffer.allocUnsafe(len);
      writeAt(this.single, 0, s);
      this.count = 1;
      return;
    }
    let frame = this.frame!;
    if (this.off + 2 + len > frame.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(frame.length * 2, this.off + 2 + len)));
      frame.copy(grown, 0, 0, this.off);
      this.frame = frame = grown;
    }
    frame[this.off] = len & 0xff;
    frame[this.off + 1] = len >>> 8;
    this.off = writeAt(frame, this.off + 2, s);
    this.count++;
  }

  /** Sends what was added since the last send, if anything. */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    const single = this.single;
    const frame = this.frame;
    const end = this.off;
    this.single = undefined;
    this.frame = undefined;
    this.off = 0;
    this.count = 0;
    if (frame === undefined) {
      this.send(single!, 1);
      return;
    }
    frame[0] = METRIC_SAMPLE_BATCH_MAGIC;
    frame[1] = METRIC_SAMPLE_LAYOUT;
    frame[2] = n & 0xff;
    frame[3] = n >>> 8;
    this.send(frame.subarray(0, end), n);
  }
}

function malformed(detail: string): { ok: false; reason: 'malformed'; detail: string } {
  return { ok: false, reason: 'malformed', detail };
}

/**
 * Layout-1 bytes → a valid sample, or why not: `oversized` (over `MAX_METRIC_SAMPLE_BYTES`, checked
 * first), `malformed` (not magic 0xB5, another layout version, unknown flag bits, truncated, trailing
 * bytes, invalid UTF-8), `invalid` (well-formed but off-schema: a negative seq, a bad API name…).
 * Never throws.
 */
export function decodeMetricSampleBinary(bytes: Uint8Array): DecodeResult<MetricSample> {
  const n = bytes.byteLength;
  if (n > MAX_METRIC_SAMPLE_BYTES) return { ok: false, reason: 'oversized', detail: `${n} bytes > ${MAX_METRIC_SAMPLE_BYTES}` };
  return decodeAt(asBuffer(bytes), 0, n);
}

/** The layout-1 sample in `b[base, end)` (the size already checked), as `decodeMetricSampleBinary` decides. */
function decodeAt(b: Buffer, base: number, end: number): DecodeResult<MetricSample> {
  const n = end - base;
  if (n < FIXED) return malformed(`binary metric sample truncated: ${n} bytes, layout ${METRIC_SAMPLE_LAYOUT} needs at least ${FIXED}`);
  if (b[base] !== METRIC_SAMPLE_MAGIC) return malformed(`not a binary metric sample (first byte 0x${b[base].toString(16)}, want 0xb5)`);
  if (b[base + 1] !== METRIC_SAMPLE_LAYOUT) {
    return malformed(`binary metric sample layout version ${b[base + 1]} is not supported (this build reads ${METRIC_SAMPLE_LAYOUT})`);
  }
  const flags = b[base + 2];
  if ((flags & ~FLAG_KNOWN) !== 0) return malformed(`binary metric sample has unknown flag bits 0x${flags.toString(16)}`);
  const mon = (flags >> MON_SHIFT) & 3;
  if (mon === 3) return malformed('binary metric sample has an unknown monitoring kind 3');
  const apiLen = b[base + 3];
  const replicaLen = b[base + 4] | (b[base + 5] << 8);
  const revisionLen = b[base + 6] | (b[base + 7] << 8);
  const cpu = (flags & FLAG_CPU) !== 0;
  let off = base + FIXED;
  const stringsEnd = off + apiLen + replicaLen + revisionLen;
  if (stringsEnd > end) return malformed(`binary metric sample truncated: ${n} bytes, its strings end at ${stringsEnd - base}`);
  // The three ids in one native decode: ASCII (the usual case) has as many characters as bytes, so
  // the ids are slices of it at their byte offsets; otherwise each is decoded on its own. (Looking
  // them up by a hash of their bytes instead, to reuse the strings of a replica seen before, measured
  // slower: ~300 ns against ~260 ns a message, the byte loops cost more than one native decode.)
  const text = utf8At(b, off, stringsEnd);
  if (text === undefined) return malformed('binary metric sample has a string that is not valid UTF-8');
  let api: string;
  let replica: string;
  let revision: string;
  if (text.length === stringsEnd - off) {
    api = text.slice(0, apiLen);
    replica = text.slice(apiLen, apiLen + replicaLen);
    revision = text.slice(apiLen + replicaLen);
  } else {
    api = utf8Slice(b, off, off + apiLen);
    replica = utf8Slice(b, off + apiLen, off + apiLen + replicaLen);
    revision = utf8Slice(b, off + apiLen + replicaLen, stringsEnd);
    // A multi-byte character split across two ids would decode to U+FFFD on both sides.
    if (api.length + replica.length + revision.length !== text.length) return malformed('binary metric sample splits a UTF-8 character between two strings');
  }
  off = stringsEnd;
  let monitoring: MonitoringSample | undefined;
  if (mon === MON_REGRESSION) {
    if (off + 32 > end) return malformed(`binary metric sample truncated: ${n} bytes, monitoring ends at ${off + 32 - base}`);
    monitoring = {
      modelType: 'regression',
      count: b.readDoubleLE(off),
      min: b.readDoubleLE(off + 8),
      max: b.readDoubleLE(off + 16),
      sum: b.readDoubleLE(off + 24),
    };
    off += 32;
  } else if (mon === MON_CLASSIFICATION) {
    if (off + 2 > end) return malformed(`binary metric sample truncated: ${n} bytes, monitoring starts at ${off - base}`);
    const count = b.readUInt16LE(off);
    off += 2;
    const classes: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      if (off + 2 > end) return malformed(`binary metric sample truncated in class ${i}`);
      const len = b.readUInt16LE(off);
      off += 2;
      if (off + len + 8 > end) return malformed(`binary metric sample truncated in class ${i}`);
      const name = utf8At(b, off, off + len);
      if (name === undefined) return malformed('binary metric sample has a class name that is not valid UTF-8');
      off += len;
      if (Object.hasOwn(classes, name)) return malformed(`binary metric sample repeats class "${name.slice(0, 64)}"`);
      classes[name] = b.readDoubleLE(off);
      off += 8;
    }
    monitoring = { modelType: 'classification', classes };
  }
  if (off !== end) return malformed(`binary metric sample has ${end - off} bytes after its end`);
  const dv = viewOf(b);
  const o = b.byteOffset + base + 8;
  const seq = dv.getFloat64(o, true);
  const t = dv.getFloat64(o + 8, true);
  const intervalMs = dv.getFloat64(o + 16, true);
  const inFlight = dv.getFloat64(o + 24, true);
  const inFlightMax = dv.getFloat64(o + 32, true);
  const r2 = dv.getFloat64(o + 40, true);
  const r4 = dv.getFloat64(o + 48, true);
  const r5 = dv.getFloat64(o + 56, true);
  const latencyMsSum = dv.getFloat64(o + 64, true);
  const cpuUtilization = dv.getFloat64(o + 72, true);
  const ready = (flags & FLAG_READY) !== 0;
  // Fields in wire order (the order `MetricSample` lists them), as JSON.parse of the JSON encoding gives.
  const requests = { '2xx': r2, '4xx': r4, '5xx': r5 };
  const x: Record<string, unknown> = cpu
    ? { v: 1, api, replica, revision, seq, t, intervalMs, inFlight, inFlightMax, cpuUtilization, requests, latencyMsSum, ready }
    : { v: 1, api, replica, revision, seq, t, intervalMs, inFlight, inFlightMax, requests, latencyMsSum, ready };
  if (monitoring !== undefined) x.monitoring = monitoring;
  // The schema's checks on the values read (the object above has exactly the schema's keys, so
  // additionalProperties and the types of v and ready hold by construction): what isMetricSample
  // would decide, without walking the object (test/core/metrics/metric-sample-binary.test.ts
  // compares the two on mutated samples).
  if (
    isApiName(api) &&
    isStr(replica, 253) &&
    isStr(revision, 128) &&
    isInt0(seq) &&
    isNum0(t) &&
    isNum0(intervalMs) &&
    isNum0(inFlight) &&
    isNum0(inFlightMax) &&
    isInt0(r2) &&
    isInt0(r4) &&
    isInt0(r5) &&
    isNum0(latencyMsSum) &&
    (!cpu || isNum0(cpuUtilization)) &&
    (monitoring === undefined || isMonitoring(monitoring))
  ) {
    return { ok: true, value: x as unknown as MetricSample };
  }
  return { ok: false, reason: 'invalid', detail: explainInvalidMetricSample(x) };
}

/**
 * Either encoding off the wire: layout 1 when the first byte is the magic 0xB5, else UTF-8 JSON (what
 * replicas before layout 1 send: a daemon reads both during a rolling upgrade, for one byte compare).
 * Size is checked first either way. A batch frame (0xB6) is not one sample: it is refused here as
 * `malformed`; `forEachMetricSample` reads all three. Never throws.
 */
export function decodeMetricSampleMessage(bytes: Uint8Array): DecodeResult<MetricSample> {
  const n = bytes.byteLength;
  if (n > 0 && bytes[0] === METRIC_SAMPLE_MAGIC) return decodeMetricSampleBinary(bytes);
  if (n > 0 && bytes[0] === METRIC_SAMPLE_BATCH_MAGIC) {
    if (n > MAX_METRIC_SAMPLE_BYTES) return { ok: false, reason: 'oversized', detail: `${n} bytes > ${MAX_METRIC_SAMPLE_BYTES}` };
    return malformed('a batch of metric samples where one sample was expected');
  }
  return decodeMetricSample(bytes);
}

/**
 * Every sample of one message off the wire, in order: a layout-1 sample, a JSON one, or a batch frame
 * (0xB6, see `MetricSampleBatchEncoder`) of layout-1 samples. `each` gets each sample's result: a
 * sample of a batch that is off-schema or malformed is refused alone and the others are delivered. A
 * batch whose framing is wrong (another version, a count of 0, lengths that do not add up to the
 * message) is one `malformed` result and delivers nothing. Size is checked first, on the whole
 * message. Returns how many results `each` got. Never throws (unless `each` does).
 */
export function forEachMetricSample(bytes: Uint8Array, each: (r: DecodeResult<MetricSample>) => void): number {
  const n = bytes.byteLength;
  if (n === 0 || bytes[0] !== METRIC_SAMPLE_BATCH_MAGIC) {
    each(decodeMetricSampleMessage(bytes));
    return 1;
  }
  if (n > MAX_METRIC_SAMPLE_BYTES) {
    each({ ok: false, reason: 'oversized', detail: `${n} bytes > ${MAX_METRIC_SAMPLE_BYTES}` });
    return 1;
  }
  const bad = batchFramingError(bytes);
  if (bad !== undefined) {
    each(malformed(bad));
    return 1;
  }
  const b = asBuffer(bytes);
  const count = b[2] | (b[3] << 8);
  let off = BATCH_HEADER;
  for (let i = 0; i < count; i++) {
    const len = b[off] | (b[off + 1] << 8);
    each(decodeAt(b, off + 2, off + 2 + len));
    off += 2 + len;
  }
  return count;
}

/** Why a batch frame's framing is wrong, or undefined when its lengths add up. */
function batchFramingError(b: Uint8Array): string | undefined {
  const n = b.byteLength;
  if (n < BATCH_HEADER) return `metric sample batch truncated: ${n} bytes, its header needs ${BATCH_HEADER}`;
  if (b[1] !== METRIC_SAMPLE_LAYOUT) return `metric sample batch version ${b[1]} is not supported (this build reads ${METRIC_SAMPLE_LAYOUT})`;
  const count = b[2] | (b[3] << 8);
  if (count === 0) return 'metric sample batch of 0 samples';
  let off = BATCH_HEADER;
  for (let i = 0; i < count; i++) {
    if (off + 2 > n) return `metric sample batch truncated: ${n} bytes, sample ${i} of ${count} starts at ${off}`;
    off += 2 + (b[off] | (b[off + 1] << 8));
    if (off > n) return `metric sample batch truncated: ${n} bytes, sample ${i} of ${count} ends at ${off}`;
  }
  if (off !== n) return `metric sample batch has ${n - off} bytes after its ${count} samples`;
  return undefined;
}
