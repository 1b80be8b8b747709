// tests/js/onnx_run_io.mjs — what the JS checks and benches need to exchange tensors with
// examples/onnx_run and compare its outputs with onnxruntime-node's: a TensorProto decoder and
// encoder (the files onnx_run's --input reads and --output writes), onnx_run's output file names,
// and the per-output comparison. Used by tests/js/check_torch_models.mjs (which explains the
// tolerance in its header) and bench/ort_models.mjs (which checks outputs before it times).
import { readFileSync } from 'node:fs';

// ---- TensorProto (onnx.proto3), only the fields a dense tensor uses ----

const ELEM = { 1: 'float32', 6: 'int32', 7: 'int64', 11: 'float64' };
const ELEM_CODE = Object.fromEntries(Object.entries(ELEM).map(([code, type]) => [type, Number(code)]));

/** Decodes a serialized TensorProto into {name, type, dims, data} (Float32Array, BigInt64Array, ...). */
export function decodeTensor(bytes, what) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let pos = 0;
  const varint = () => {  // as BigInt: int64 fields are 64-bit two's complement varints
    let v = 0n, shift = 0n;
    for (;;) {
      if (pos >= bytes.length) throw new Error(`${what}: truncated varint`);
      const b = bytes[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return BigInt.asIntN(64, v);
      shift += 7n;
      if (shift > 63n) throw new Error(`${what}: varint too long`);
    }
  };
  const t = { name: '', type: 0, dims: [], raw: null, floats: [], int64s: [], int32s: [], doubles: [] };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3, wire = key & 7;
    const packed = (read, into) => {  // a repeated scalar, packed (wire 2) or one element (wire 0/1/5)
      if (wire !== 2) { into.push(read()); return; }
      const end = pos + Number(varint());
      while (pos < end) into.push(read());
    };
    const f32 = () => { const v = view.getFloat32(pos, true); pos += 4; return v; };
    const f64 = () => { const v = view.getFloat64(pos, true); pos += 8; return v; };
    if (field === 1) packed(varint, t.dims);
    else if (field === 2) t.type = Number(varint());
    else if (field === 4) packed(f32, t.floats);
    else if (field === 5) packed(varint, t.int32s);
    else if (field === 7) packed(varint, t.int64s);
    else if (field === 10) packed(f64, t.doubles);
    else if (field === 8 || field === 9) {
      const n = Number(varint());
      const chunk = bytes.subarray(pos, pos + n);
      pos += n;
      if (field === 8) t.name = new TextDecoder().decode(chunk);
      else t.raw = chunk;
    } else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) pos += Number(varint());
    else throw new Error(`${what}: wire type ${wire} of field ${field}`);
  }
  const type = ELEM[t.type];
  if (!type) throw new Error(`${what}: element type ${t.type} is not one this check reads`);
  const dims = t.dims.map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const Array_ = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, float64: Float64Array }[type];
  let data;
  if (t.raw) {
    if (t.raw.length !== count * Array_.BYTES_PER_ELEMENT) throw new Error(`${what}: raw_data holds ${t.raw.length} bytes for ${count} ${type}`);
    data = new Array_(count);
    const rv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.length);
    for (let i = 0; i < count; ++i) {  // little-endian whatever the host is
      if (type === 'float32') data[i] = rv.getFloat32(4 * i, true);
      else if (type === 'int32') data[i] = rv.getInt32(4 * i, true);
      else if (type === 'int64') data[i] = rv.getBigInt64(8 * i, true);
      else data[i] = rv.getFloat64(8 * i, true);
    }
  } else {
    const vals = { float32: t.floats, int32: t.int32s.map(Number), int64: t.int64s, float64: t.doubles }[type];
    if (vals.length !== count) throw new Error(`${what}: ${vals.length} values for shape [${dims}]`);
    data = Array_.from(vals);
  }
  return { name: t.name, type, dims, data };
}

export const readTensor = (path) => decodeTensor(new Uint8Array(readFileSync(path)), path);

/** Serializes a dense float32 tensor as a TensorProto (dims, data_type, name, raw_data), the form
 *  onnx_run's --input reads. `data` is a Float32Array; its length must match `dims`. */
export function encodeTensor(name, dims, data) {
  const count = dims.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== count)
    throw new Error(`encodeTensor ${name}: ${data.length} values for shape [${dims}] (a Float32Array is needed)`);
  const bytes = [];
  const varint = (v) => {  // non-negative values only: dims, field keys, lengths
    for (let x = BigInt(v); ; x >>= 7n) {
      if (x < 0x80n) { bytes.push(Number(x)); return; }
      bytes.push(Number(x & 0x7fn) | 0x80);
    }
  };
  const packedDims = [];
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`encodeTensor ${name}: bad dimension ${d}`);
    for (let x = d; ; x = Math.floor(x / 128)) {
      if (x < 128) { packedDims.push(x); break; }
      packedDims.push((x % 128) | 0x80);
    }
  }
  const nameBytes = new TextEncoder().encode(name);
  varint((1 << 3) | 2); varint(packedDims.length); bytes.push(...packedDims);   // dims, packed
  varint((2 << 3) | 0); varint(ELEM_CODE.float32);                               // data_type
  varint((8 << 3) | 2); varint(nameBytes.length); bytes.push(...nameBytes);      // name
  varint((9 << 3) | 2); varint(data.length * 4);                                 // raw_data
  const head = Uint8Array.from(bytes);
  const out = new Uint8Array(head.length + data.length * 4);
  out.set(head);
  const view = new DataView(out.buffer, head.length);
  for (let i = 0; i < data.length; ++i) view.setFloat32(4 * i, data[i], true);  // little-endian always
  return out;
}

// ---- onnx_run's outputs against onnxruntime's ----

/** Relative tolerance per output: see tests/js/check_torch_models.mjs for why 1e-5. */
export const TOLERANCE = 1e-5;

/** onnx_run's file name for an output (examples/onnx_run.hpp output_paths). */
export const outputFile = (name) => {
  const f = (name || 'output').replace(/[^A-Za-z0-9._-]/g, '_');
  return (f === '.' || f === '..' ? 'output' : f) + '.pb';
};

/** Compares one output; returns {ok, text, scaled} (scaled: max|diff| / max(1, max|ort|)). */
export function compareOutput(spec, nt, ref) {
  const name = spec.name;
  if (nt.type !== ref.type) return { ok: false, text: `${name}: element type ${nt.type}, onnxruntime ${ref.type}` };
  if (nt.dims.join() !== ref.dims.join())
    return { ok: false, text: `${name}: shape [${nt.dims}], onnxruntime [${ref.dims}]` };
  if (ref.type === 'int64' || ref.type === 'int32') {  // indices: exact
    let wrong = 0;
    for (let i = 0; i < ref.data.length; ++i) wrong += nt.data[i] !== ref.data[i];
    return { ok: wrong === 0, scaled: 0, text: `${name} [${ref.dims}] ${ref.type} ${wrong ? `${wrong} values differ` : 'equal'}` };
  }
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < ref.data.length; ++i) {
    const d = Math.abs(nt.data[i] - ref.data[i]);
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);  // a NaN on either side fails
    maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
  }
  const limit = TOLERANCE * Math.max(1, maxRef);
  let ok = maxDiff <= limit;
  let text = `${name} [${ref.dims}] max|diff| ${maxDiff.toExponential(2)} (limit ${limit.toExponential(2)})`;
  if (spec.class_vector) {
    if (ref.dims.length !== 2) return { ok: false, text: `${name}: a class vector must be [batch, classes], got [${ref.dims}]` };
    const [rows, k] = ref.dims;
    let same = 0;
    for (let r = 0; r < rows; ++r) {
      let a = 0, b = 0;
      for (let c = 1; c < k; ++c) {
        if (nt.data[r * k + c] > nt.data[r * k + a]) a = c;
        if (ref.data[r * k + c] > ref.data[r * k + b]) b = c;
      }
      same += a === b;
    }
    ok &&= same === rows;
    text += `, argmax same ${same}/${rows}`;
  }
  return { ok, scaled: maxDiff / Math.max(1, maxRef), text };
}
