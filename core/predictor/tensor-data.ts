/**
 * Model input and output conversion shared by the onnx and tensorflow backends (pure; no runtime
 * imports). Requests carry nested JSON arrays, typed arrays or `{ inputName: value }` maps; models
 * want flat typed buffers with a shape and a dtype. `bindInputs` checks a request against the model's
 * input signatures and throws `HttpError(400)` naming the input, what was expected and what was got;
 * `toNested` turns a flat output buffer back into plain nested arrays for JSON.
 */
import { HttpError, PredictorError } from '../errors.js';
import type { TensorSignature } from './predictor-contract.js';

/** Element types a model input or output can have (onnxruntime names; TF.js uses a subset). */
export type TensorDtype =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

/** Flat values of a tensor: the typed array a runtime takes for each dtype (`bool` as 0/1 bytes, `float16` as half-float bits). */
export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[];

/** One input, ready for a runtime: `data.length` is the product of `shape`. */
export interface TensorData {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly data: TensorValues;
}

/** A flat buffer with an explicit shape, accepted wherever an input value is: `{ data, shape }` (or `dims`). */
export interface ShapedValue {
  readonly data: ArrayLike<unknown>;
  readonly shape: readonly number[];
}

type AnyTypedArray = Exclude<TensorValues, string[]> | Uint8ClampedArray;

const DTYPES: ReadonlySet<string> = new Set<TensorDtype>([
  'float32', 'float64', 'float16', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string',
]);

export function isTensorDtype(s: string): s is TensorDtype {
  return DTYPES.has(s);
}

const INT_RANGE: Readonly<Record<string, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

function allocate(dtype: TensorDtype, n: number): TensorValues {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    case 'int16': return new Int16Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint8': return new Uint8Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'uint64': return new BigUint64Array(n);
    case 'bool': return new Uint8Array(n);
    case 'string': return new Array<string>(n);
  }
}

/** `[batch, 4]`: how a shape is written in messages (dynamic dims by name, or `-1`). */
export function formatShape(shape: ReadonlyArray<number | string | null>): string {
  return `[${shape.map((d) => (d === null ? -1 : d)).join(', ')}]`;
}

function isDynamic(d: number | string | null): boolean {
  return typeof d === 'string' || d === null || d < 0;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `number ${v}`;
  if (typeof v === 'bigint') return `integer ${v}`;
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function indexPath(flatIndex: number, shape: readonly number[]): string {
  const idx: number[] = [];
  let rest = flatIndex;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d] || 1;
    idx.unshift(rest % n);
    rest = Math.floor(rest / n);
  }
  return idx.map((i) => `[${i}]`).join('');
}

// Float → IEEE 754 half bits (round to nearest even), for float16 inputs.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** IEEE 754 half bits → number. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** A number `put` refused: ±Infinity, or finite but beyond the dtype's range (stored, it would be ±Infinity). */
class NotFinite {
  constructor(
    readonly value: number,
    readonly dtype: TensorDtype,
  ) {}
  describe(): string {
    if (this.value === Infinity || this.value === -Infinity) return `is not a finite number (${this.value}: beyond ±1.8e308)`;
    if (Number.isNaN(this.value)) return 'is not a finite number (NaN)';
    return `is not a finite ${this.dtype} number (${this.value} is beyond the ${this.dtype} range)`;
  }
}

/** The 400 for an element `put` refused at `where` (`[0][2]`). */
function elementError(name: string, dtype: TensorDtype, err: string | NotFinite, where: string): HttpError {
  if (err instanceof NotFinite) return bad(name, `${where === '' || where === 'the value' ? 'the value' : `element ${where}`} ${err.describe()}`);
  return bad(name, `expected ${dtype} values, got ${err} at ${where}`);
}

/**
 * Writes one element; returns an error text (what was got) when `v` cannot be `dtype`, else undefined.
 * Hot path: called once per element, so it avoids allocation on success.
 */
function put(out: TensorValues, i: number, dtype: TensorDtype, v: unknown): string | NotFinite | undefined {
  switch (dtype) {
    case 'float32':
    case 'float64': {
      const x = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
      if (x === undefined) return describeValue(v);
      const f = out as Float32Array;
      f[i] = x;
      // JSON.parse turns a number beyond ±1.8e308 (`1e309`, 400 digits) into ±Infinity, and a float32 store
      // turns one beyond ±3.4e38 into ±Infinity: the model would answer null. NaN (never from JSON) passes.
      if (f[i] === Infinity || f[i] === -Infinity) return new NotFinite(x, dtype);
      return undefined;
    }
    case 'float16': {
      if (typeof v !== 'number') return describeValue(v);
      const h = toHalfBits(v);
      if ((h & 0x7fff) === 0x7c00) return new NotFinite(v, dtype);
      (out as Uint16Array)[i] = h;
      return undefined;
    }
    case 'int8':
    case 'int16':
    case 'int32':
    case 'uint8':
    case 'uint16':
    case 'uint32': {
      const n = typeof v === 'bigint' ? Number(v) : v;
      if (n === Infinity || n === -Infinity) return new NotFinite(n, dtype);
      if (typeof n !== 'number' || !Number.isInteger(n)) return describeValue(v);
      const [lo, hi] = INT_RANGE[dtype];
      if (n < lo || n > hi) return `${n}, outside [${lo}, ${hi}]`;
      (out as Int32Array)[i] = n;
      return undefined;
    }
    case 'int64':
    case 'uint64': {
      let b: bigint;
      if (typeof v === 'number') {
        if (v === Infinity || v === -Infinity) return new NotFinite(v, dtype);
        if (!Number.isSafeInteger(v)) return Number.isInteger(v) ? `${v}, beyond 2^53 (send it as a string)` : describeValue(v);
        b = BigInt(v);
      } else if (typeof v === 'bigint') b = v;
      else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
      else return describeValue(v);
      const ok = dtype === 'int64' ? BigInt.asIntN(64, b) === b : BigInt.asUintN(64, b) === b;
      if (!ok) return `${b}, outside the ${dtype} range`;
      (out as BigInt64Array)[i] = b;
      return undefined;
    }
    case 'bool':
      if (typeof v === 'boolean') (out as Uint8Array)[i] = v ? 1 : 0;
      else if (v === 0 || v === 1) (out as Uint8Array)[i] = v;
      else return describeValue(v);
      return undefined;
    case 'string':
      if (typeof v !== 'string') return describeValue(v);
      (out as string[])[i] = v;
      return undefined;
  }
}

function isTypedArray(v: unknown): v is AnyTypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function isShapedValue(v: unknown): v is { data: ArrayLike<unknown>; shape?: readonly number[]; dims?: readonly number[] } {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || isTypedArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (isTypedArray(o.data) || Array.isArray(o.data)) && (Array.isArray(o.shape) || Array.isArray(o.dims));
}

/** Plain `{ key: value }` object (not an array, typed array or `{ data, shape }` value). */
export function isInputMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !isTypedArray(v) && !isShapedValue(v);
}

function bad(name: string, message: string): HttpError {
  return new HttpError(400, `input "${name}": ${message}`);
}

/** Shape of a flat buffer of `n` values against the signature: the one dynamic dim is inferred. */
function flatShape(sig: TensorSignature, n: number): number[] {
  const dims = sig.shape;
  if (dims.length === 0) return [n];
  const dynamic = dims.filter((d) => isDynamic(d)).length;
  const known = dims.reduce<number>((p, d) => (isDynamic(d) ? p : p * (d as number)), 1);
  if (dynamic > 1) {
    throw bad(sig.name, `expected shape ${formatShape(dims)}, got a flat array of ${n} values; with more than one dynamic dimension send nested arrays or { data, shape }`);
  }
  if (dynamic === 0) {
    if (known !== n) throw bad(sig.name, `expected shape ${formatShape(dims)} (${known} values), got a flat array of ${n} values`);
    return dims as number[];
  }
  if (known === 0 ? n !== 0 : n % known !== 0) {
    throw bad(sig.name, `expected shape ${formatShape(dims)}, got a flat array of ${n} values (not a multiple of ${known})`);
  }
  return dims.map((d) => (isDynamic(d) ? (known === 0 ? 0 : n / known) : (d as number)));
}

/** Shape of a nested array, read along the first element of each level. */
function nestedShape(v: unknown): number[] {
  const shape: number[] = [];
  let x = v;
  while (Array.isArray(x)) {
    shape.push(x.length);
    if (x.length === 0) break;
    x = x[0];
  }
  return shape;
}

/** Throws `HttpError(400)` naming the input when `got` does not fit the signature's shape (dynamic dims match any size). */
export function checkShape(sig: TensorSignature, got: readonly number[]): void {
  const want = sig.shape;
  // An empty signature shape means "unknown" (onnxruntime reports undefined shapes as []).
  if (want.length === 0) return;
  const mismatch = want.length !== got.length || want.some((d, i) => !isDynamic(d) && d !== got[i]);
  if (mismatch) {
    const hint = got.length === want.length - 1 && isDynamic(want[0]) ? ' (wrap a single sample in a list to make a batch of 1)' : '';
    throw bad(sig.name, `expected shape ${formatShape(want)}, got ${formatShape(got)}${hint}`);
  }
}

function fromFlat(sig: TensorSignature, dtype: TensorDtype, src: ArrayLike<unknown>, shape: number[]): TensorData {
  const n = src.length;
  const expected = shape.reduce((a, b) => a * b, 1);
  if (expected !== n) throw bad(sig.name, `shape ${formatShape(shape)} holds ${expected} values, got ${n}`);
  // A typed array of exactly the runtime's type is passed through without a copy.
  if (isTypedArray(src) && sameLayout(src, dtype)) return { name: sig.name, dtype, shape, data: src as TensorValues };
  const out = allocate(dtype, n);
  for (let i = 0; i < n; i++) {
    const err = put(out, i, dtype, src[i]);
    if (err !== undefined) throw elementError(sig.name, dtype, err, indexPath(i, shape));
  }
  return { name: sig.name, dtype, shape, data: out };
}

function sameLayout(a: AnyTypedArray, dtype: TensorDtype): boolean {
  switch (dtype) {
    case 'float32': return a instanceof Float32Array;
    case 'float64': return a instanceof Float64Array;
    case 'int8': return a instanceof Int8Array;
    case 'int16': return a instanceof Int16Array;
    case 'int32': return a instanceof Int32Array;
    case 'int64': return a instanceof BigInt64Array;
    case 'uint8': return a instanceof Uint8Array;
    case 'uint16': return a instanceof Uint16Array;
    case 'uint32': return a instanceof Uint32Array;
    case 'uint64': return a instanceof BigUint64Array;
    default: return false;
  }
}

/**
 * Converts one input value to a `TensorData` matching `sig`: nested arrays (shape read from the
 * nesting, must be rectangular), a scalar, a flat typed array (the one dynamic dimension is inferred)
 * or `{ data, shape }`. Throws `HttpError(400)` naming the input and the expected and received shape or
 * dtype; `PredictorError` when the signature's dtype is one this engine cannot feed.
 */
export function toTensorData(sig: TensorSignature, value: unknown): TensorData {
  const dtype = sig.dtype;
  if (!isTensorDtype(dtype)) throw new PredictorError(`input "${sig.name}" has dtype ${dtype}, which myelin cannot feed`);
  if (isTypedArray(value)) return fromFlat(sig, dtype, value, flatShape(sig, value.length));
  if (isShapedValue(value)) {
    const shape = [...(value.shape ?? value.dims ?? [])];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(sig.name, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    checkShape(sig, shape);
    return fromFlat(sig, dtype, value.data, shape);
  }
  if (value === undefined) throw bad(sig.name, 'no value');
  const shape = nestedShape(value);
  checkShape(sig, shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = allocate(dtype, n);
  // The common case first: a rectangular array of valid values, filled without tracking where the walk
  // is. At the first element or row that does not fit, the walk below starts again to say where.
  if (shape.length > 0 && fillNested(out, dtype, value, shape, 0, 0) === n) return { name: sig.name, dtype, shape, data: out };
  return fillNestedReporting(sig, dtype, value, shape, out);
}

/**
 * Fills `out` from the nested array `rows` (level `depth` of `shape`, flat index `start`): the index
 * after the last element written, or -1 at the first row of the wrong length, leaf that is an array, or
 * element `put` refuses (float32/float64 inlined: a number whose stored value is finite). A module-level
 * function, not a closure: this runs once per request on the onnx path.
 */
function fillNested(out: TensorValues, dtype: TensorDtype, rows: unknown, shape: readonly number[], depth: number, start: number): number {
  if (!Array.isArray(rows) || rows.length !== shape[depth]) return -1;
  const n = rows.length;
  if (depth < shape.length - 1) {
    let i = start;
    for (let k = 0; k < n && i >= 0; k++) i = fillNested(out, dtype, rows[k], shape, depth + 1, i);
    return i;
  }
  if (dtype === 'float32' || dtype === 'float64') {
    const f = out as Float32Array;
    for (let k = 0; k < n; k++) {
      const x: unknown = rows[k];
      if (typeof x !== 'number') return -1;
      f[start + k] = x;
      const stored = f[start + k];
      if (stored === Infinity || stored === -Infinity) return -1;
    }
  } else {
    for (let k = 0; k < n; k++) {
      const x: unknown = rows[k];
      if (Array.isArray(x) || put(out, start + k, dtype, x) !== undefined) return -1;
    }
  }
  return start + n;
}

/** `toTensorData` of a nested array or scalar that `fillNested` did not take: the same fill, tracking where it is, to throw `HttpError(400)` naming the element. */
function fillNestedReporting(sig: TensorSignature, dtype: TensorDtype, value: unknown, shape: number[], out: TensorValues): TensorData {
  let i = 0;
  const rank = shape.length;
  // Index of the element being visited, turned into `[0][2]` only when an error is reported.
  const at: number[] = [];
  const where = (): string => at.map((k) => `[${k}]`).join('') || 'the value';
  const fill = (v: unknown, depth: number): void => {
    if (depth === rank) {
      if (Array.isArray(v)) throw bad(sig.name, `ragged nested array: ${where()} is nested deeper than ${formatShape(shape)}`);
      const err = put(out, i, dtype, v);
      if (err !== undefined) throw elementError(sig.name, dtype, err, where());
      i++;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      const got = Array.isArray(v) ? `${v.length} elements` : describeValue(v);
      throw bad(sig.name, `ragged nested array: ${where()} has ${got}, expected ${shape[depth]} (shape ${formatShape(shape)} read from the first elements)`);
    }
    at.push(0);
    for (let k = 0; k < v.length; k++) {
      at[depth] = k;
      fill(v[k], depth + 1);
    }
    at.pop();
  };
  fill(value, 0);
  return { name: sig.name, dtype, shape, data: out };
}

/**
 * Checks tensors that arrive already shaped and typed (from the Python bridge) against the model's
 * inputs: exactly the input names, each with the signature's dtype, a shape that fits and as many
 * values as the shape holds. Returns them in signature order; throws `HttpError(400)` naming the input.
 */
export function checkTensors(tensors: readonly TensorData[], signatures: readonly TensorSignature[]): TensorData[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const names = signatures.map((s) => s.name);
  const unknown = tensors.filter((t) => !names.includes(t.name)).map((t) => `"${t.name}"`);
  if (unknown.length) throw new HttpError(400, `unknown input${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the model's inputs: ${names.join(', ')})`);
  return signatures.map((sig) => {
    const t = byName.get(sig.name);
    if (!t) throw bad(sig.name, `missing (the model's inputs: ${names.join(', ')})`);
    if (t.dtype !== sig.dtype) throw bad(sig.name, `expected dtype ${sig.dtype}, got ${t.dtype}`);
    checkShape(sig, t.shape);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw bad(sig.name, `shape ${formatShape(t.shape)} holds ${n} values, got ${t.data.length}`);
    return t;
  });
}

/**
 * Binds a request's model input to the model's inputs. A single-input model takes the value itself (a
 * nested array, typed array, scalar or `{ data, shape }`) or `{ <inputName>: value }`; a model with
 * several inputs takes `{ <inputName>: value, … }` with exactly its input names. Symbolic dimensions
 * with the same name (`batch`) must have the same size across inputs. Throws `HttpError(400)`.
 */
export function bindInputs(input: unknown, signatures: readonly TensorSignature[]): TensorData[] {
  const names = signatures.map((s) => s.name);
  // A plain object whose keys are exactly the input names is always a map, even when the names are
  // `data` and `shape` (which would otherwise read as a `{ data, shape }` value).
  const plain = typeof input === 'object' && input !== null && !Array.isArray(input) && !isTypedArray(input);
  const keys = plain ? Object.keys(input) : [];
  const exact = plain && keys.length === names.length && names.every((n) => keys.includes(n));
  let values: Record<string, unknown>;
  if (signatures.length === 1) {
    const only = signatures[0].name;
    if (exact) values = input as Record<string, unknown>;
    else if (isInputMap(input)) {
      throw new HttpError(400, `the model has one input "${only}": send its value, or an object { "${only}": … } (got an object with keys ${keys.map((k) => `"${k}"`).join(', ') || 'none'})`);
    } else values = { [only]: input };
  } else {
    if (!plain) {
      throw new HttpError(400, `the model has ${names.length} inputs (${names.join(', ')}): send an object { ${names.map((n) => `"${n}": …`).join(', ')} } (got ${describeValue(input)})`);
    }
    const missing = names.filter((n) => !keys.includes(n));
    const unknown = keys.filter((k) => !names.includes(k));
    if (missing.length || unknown.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}`);
      if (unknown.length) parts.push(`unknown input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}`);
      throw new HttpError(400, `${parts.join('; ')} (the model's inputs: ${names.join(', ')})`);
    }
    values = input as Record<string, unknown>;
  }
  const tensors = signatures.map((s) => toTensorData(s, values[s.name]));
  // Symbolic dims shared between inputs must agree (onnxruntime would fail later with a less clear message).
  const seen = new Map<string, { size: number; input: string }>();
  signatures.forEach((s, k) => {
    s.shape.forEach((d, axis) => {
      if (typeof d !== 'string') return;
      const size = tensors[k].shape[axis];
      const prev = seen.get(d);
      if (prev && prev.size !== size) {
        throw bad(s.name, `dimension "${d}" is ${size}, but input "${prev.input}" has it as ${prev.size}`);
      }
      if (!prev) seen.set(d, { size, input: s.name });
    });
  });
  return tensors;
}

const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

function element(data: ArrayLike<unknown>, i: number, dtype: string): unknown {
  const v = data[i];
  if (typeof v === 'bigint') return v >= MIN_SAFE_BIGINT && v <= MAX_SAFE_BIGINT ? Number(v) : v.toString();
  if (dtype === 'bool') return v === 1 || v === true;
  if (dtype === 'float16' && typeof v === 'number' && data instanceof Uint16Array) return fromHalfBits(v);
  return v;
}

/**
 * Flat output values → plain nested arrays (a scalar for rank 0), safe for JSON: int64 values within
 * ±2^53 become numbers and larger ones decimal strings; bool bytes become booleans; float16 bits become
 * numbers.
 */
export function toNested(data: ArrayLike<unknown>, shape: readonly number[], dtype: string): unknown {
  if (shape.length === 0) return element(data, 0, dtype);
  return buildNested(data, shape, dtype, asIs(data, dtype), 0, 0, shape.reduce((a, b) => a * b, 1));
}

/** True when every value of `data` goes to JSON as it is (no bigint, bool or float16 bits to convert). */
function asIs(data: ArrayLike<unknown>, dtype: string): boolean {
  if (data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array) return true;
  if (data instanceof Int8Array || data instanceof Int16Array || data instanceof Uint32Array) return true;
  if (data instanceof Uint8Array) return dtype !== 'bool';
  if (data instanceof Uint16Array) return dtype !== 'float16';
  return false;
}

/**
 * Level `depth` of `toNested`: the `size` values of `data` from `start` as nested arrays. A module-level
 * function, not a closure: this runs once per request on the onnx path.
 */
function buildNested(data: ArrayLike<unknown>, shape: readonly number[], dtype: string, plain: boolean, depth: number, start: number, size: number): unknown[] {
  const n = shape[depth];
  const out = new Array<unknown>(n);
  if (depth === shape.length - 1) {
    if (plain) for (let k = 0; k < n; k++) out[k] = data[start + k];
    else for (let k = 0; k < n; k++) out[k] = element(data, start + k, dtype);
    return out;
  }
  const inner = n === 0 ? 0 : size / n;
  for (let k = 0; k < n; k++) out[k] = buildNested(data, shape, dtype, plain, depth + 1, start + k * inner, inner);
  return out;
}
