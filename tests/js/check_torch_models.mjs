// tests/js/check_torch_models.mjs — runs the models other exporters write (made by
// tests/python/make_torch_models.py) with nanotorch's onnx_run and with onnxruntime-node, and
// requires the two to agree on every output.
//
//   node tests/js/check_torch_models.mjs OUTDIR ONNX_RUN
//
// OUTDIR is what make_torch_models.py wrote (manifest.json, the .onnx files, the inputs as
// TensorProto .pb files); ONNX_RUN is the onnx_run binary (e.g. build/ci-gcc-release/examples/onnx_run).
// For every model and batch (1 and 3, the batch dimension is symbolic):
//   nanotorch         onnx_run MODEL --input X.pb --output DIR/ --threads 1 --quiet, which writes
//                     each output as a TensorProto NAME.pb (read back by the decoder below);
//   onnxruntime-node  an InferenceSession on the CPU execution provider with 1 intra-op and 1
//                     inter-op thread, fed the same .pb input.
// An output passes when its element type and shape are the same and
//   max |nanotorch - ort| <= 1e-5 * max(1, max |ort|)
// Why 1e-5 and not 0: both runtimes compute in float32, but they sum convolutions, Gemms, pools
// and reductions in a different order (ORT also fuses Conv+BatchNorm and uses FMA), so results
// differ by a few ulps of the partial sums; a wrong attribute, padding, layout or formula moves
// outputs by far more. Why scaled by max(1, max|ort|): one float32 ulp of a value near 30 is
// already 2e-6, so large-magnitude outputs (log-probabilities, unnormalised features) get the
// same relative budget. Integer outputs (MaxPool's Indices) must be equal. For an output the
// manifest marks as a class vector ([batch, classes] scores) the argmax of every row must be
// the same as well.
// A model with "reference_file" (the opset-6 graph: onnxruntime has no kernels below opset 7) is
// run by onnxruntime in that file's form, its opset-7 twin, and by nanotorch as written.
// Prints one line per model and batch (PASS/FAIL and the largest difference), then
// "N passed, M failed, K skipped" (K: the combinations make_torch_models.py could not export);
// exits 1 on any failure, 2 on a usage error.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';

const TOLERANCE = 1e-5;

// ---- TensorProto (onnx.proto3), only the fields a dense tensor uses ----

const ELEM = { 1: 'float32', 6: 'int32', 7: 'int64', 11: 'float64' };

/** Decodes a serialized TensorProto into {name, type, dims, data} (Float32Array, BigInt64Array, ...). */
function decodeTensor(bytes, what) {
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

const readTensor = (path) => decodeTensor(new Uint8Array(readFileSync(path)), path);

/** onnx_run's file name for an output (examples/onnx_run.hpp output_paths). */
const outputFile = (name) => {
  const f = (name || 'output').replace(/[^A-Za-z0-9._-]/g, '_');
  return (f === '.' || f === '..' ? 'output' : f) + '.pb';
};

// ---- comparison ----

/** Compares one output; returns {ok, text, scaled} (scaled: max|diff| / max(1, max|ort|)). */
function compareOutput(spec, nt, ref) {
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

/** Runs onnx_run on one input; returns the outputs it wrote, by manifest output name. */
function runNanotorch(onnxRun, modelPath, inputs, outDir, outputs) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const args = [modelPath, ...inputs.flatMap((f) => ['--input', f]), '--output', outDir + '/', '--threads', '1', '--quiet'];
  const r = spawnSync(onnxRun, args, { encoding: 'utf8', timeout: 60000 });
  if (r.error) throw new Error(`onnx_run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`onnx_run exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  const got = {};
  for (const o of outputs) got[o.name] = readTensor(join(outDir, outputFile(o.name)));
  return got;
}

// ---- main ----

async function main(argv) {
  if (argv.length !== 2 || argv[0] === '-h' || argv[0] === '--help') {
    console.error('usage: node tests/js/check_torch_models.mjs OUTDIR ONNX_RUN   (OUTDIR written by tests/python/make_torch_models.py)');
    return 2;
  }
  const [dir, onnxRun] = argv;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  console.log(`node ${process.version}; onnxruntime-node ${ort.env?.versions?.node ?? '?'} (cpu, 1 thread) vs ${onnxRun} ` +
    `(--threads 1); ${manifest.models.length} models from ${dir}; tolerance max|diff| <= ${TOLERANCE.toExponential()} * max(1, max|ort|)`);
  const t0 = performance.now();
  let passed = 0, failed = 0, worst = 0;
  for (const model of manifest.models) {
    let session = null;
    for (const run of model.runs) {
      const label = `${model.name.padEnd(30)} batch ${run.batch}`;
      try {
        if (!session) {
          session = await ort.InferenceSession.create(join(dir, model.reference_file ?? model.file), {
            executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
          });
        }
        const files = run.inputs.map((f) => join(dir, f));
        const feeds = {};
        files.forEach((f, k) => {
          const t = readTensor(f);
          feeds[model.inputs[k]] = new ort.Tensor(t.type, t.data, t.dims);
        });
        const ref = await session.run(feeds);
        const nt = runNanotorch(onnxRun, join(dir, model.file), files, join(dir, 'nanotorch', `${model.name}_b${run.batch}`), model.outputs);
        const results = model.outputs.map((o) => {
          const r = ref[o.name];
          if (!r) return { ok: false, text: `${o.name}: onnxruntime gave no such output` };
          return compareOutput(o, nt[o.name], { type: r.type, dims: r.dims.map(Number), data: r.data });
        });
        const ok = results.every((r) => r.ok);
        const text = results.map((r) => r.text).join('; ') + (model.reference_file ? ` (onnxruntime ran ${model.reference_file})` : '');
        for (const r of results) if (Number.isFinite(r.scaled)) worst = Math.max(worst, r.scaled);
        console.log(`${ok ? 'PASS' : 'FAIL'} ${label}  ${text}`);
        ok ? ++passed : ++failed;
      } catch (e) {
        console.log(`FAIL ${label}  ${e?.message ?? e}`);
        ++failed;
      }
    }
  }
  for (const s of manifest.skipped) console.log(`skip ${s.name.padEnd(30)} ${s.reason}`);
  console.log(`largest difference (scaled by max(1, max|ort|)): ${worst.toExponential(2)}; ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed, ${manifest.skipped.length} skipped`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`check_torch_models.mjs: ${e?.stack ?? e}`);
    console.log('0 passed, 1 failed, 0 skipped');
    process.exitCode = 1;
  },
);
