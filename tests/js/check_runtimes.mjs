// tests/js/check_runtimes.mjs — runs nanotorch's exported ONNX models in the JavaScript runtimes
// the browser demo relies on, and compares every output with nanotorch's own.
//
//   node tests/js/check_runtimes.mjs OUTDIR
//
// OUTDIR is what examples/export_check wrote: the .onnx files, manifest.json (per model: input
// file, input shape of one run, expected-output file, opset, and optionally its own labels file,
// e.g. Fashion-MNIST's for the ResNet), labels.json, the input images and expected_<model>.f32
// (the C++ module's forward, N x 10 float32 little-endian).
//
// Runtimes:
//   onnxruntime-node  every model (CPU execution provider; the binary ships in the npm package).
//   onnxjs 0.1.8      the opset <= 9 models only: ONNX.js registers MaxPool for opsets 1-9 and
//                     matches rules against the model's opset, so an opset-13 graph cannot resolve.
//
// A (runtime, model) pair passes when the output shape is [digits per run, 10] for every run,
// every digit's argmax equals nanotorch's, and every output is within 1e-5 of nanotorch's:
// |diff| <= 1e-5 * max(1, |expected|). Why 1e-5: the runtimes sum the convolutions and Gemms in
// a different order (and may use FMA), so float32 results differ by a few ulps of the partial
// sums (seen: <= 1e-6 on probabilities), while a wrong weight, a transposed layout or a
// mis-encoded attribute moves outputs by far more. Why relative above 1: probabilities are in
// [0, 1], but a confident model's log-probabilities reach -50 and below, where one float32 ulp
// is already 4e-6 (7.6e-6 from 64 on), so a fixed 1e-5 would fail on two-ulp differences.
// Prints one line per pair (max |diff|, argmax agreement, accuracy vs the MNIST labels, time per
// run), then "N passed, N failed"; exits 1 on any failure, 2 on a usage error.
//
// ONNX.js in Node needs no global shims for the CPU backend (window/document/navigator are only
// touched by the WebGL and WASM backends), with one catch: InferenceSession.loadModel(string)
// uses the global fetch() whenever one exists — meant for URLs in a browser — and Node >= 18 has
// a fetch() that rejects file paths ("Failed to parse URL"). So the model is read here and passed
// as bytes (loadModel(Uint8Array)), the path ONNX.js takes for buffers in every environment.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';
import onnxjs from 'onnxjs';

const TOLERANCE = 1e-5;
const CLASSES = 10;

// ---- files ----

/** Reads a raw little-endian float32 file (portable: DataView, whatever the host's byte order). */
function readF32(path) {
  const buf = readFileSync(path);
  if (buf.length % 4 !== 0) throw new Error(`${path}: ${buf.length} bytes is not a whole number of float32`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; ++i) out[i] = view.getFloat32(4 * i, true);
  return out;
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

// ---- runtimes ----
// Each runtime: name, accepts(model) and open(modelPath) -> async run(Float32Array, shape) -> {data, dims}.

const runtimes = [
  {
    name: 'onnxruntime-node',
    version: ort.env?.versions?.node ?? '?',
    accepts: () => true,
    async open(path, model) {
      const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
      return async (data, dims) => {
        const out = await session.run({ [model.input_name]: new ort.Tensor('float32', data, dims) });
        const t = out[session.outputNames[0]];
        return { data: t.data, dims: t.dims };
      };
    },
  },
  {
    name: 'onnxjs',
    version: '0.1.8',
    accepts: (model) => model.opset <= 9,
    async open(path) {
      const session = new onnxjs.InferenceSession({ backendHint: 'cpu' });
      await session.loadModel(new Uint8Array(readFileSync(path)));  // bytes, not a path: see the header
      return async (data, dims) => {
        const out = await session.run([new onnxjs.Tensor(data, 'float32', dims)]);
        const t = out.values().next().value;
        return { data: t.data, dims: t.dims };
      };
    },
  },
];

// ---- comparison ----

function argmax(a, offset) {
  let best = 0;
  for (let k = 1; k < CLASSES; ++k) if (a[offset + k] > a[offset + best]) best = k;
  return best;
}

/** Runs every digit of `model` through `runtime`; returns a result line and whether it passed. */
async function check(runtime, model, dir, labels, inputs) {
  const count = labels.length;
  const input = inputs(model.input);
  const perDigit = input.length / count;
  const expected = readF32(join(dir, model.expected));
  if (expected.length !== count * CLASSES)
    throw new Error(`${model.expected}: ${expected.length} floats, expected ${count} x ${CLASSES}`);
  const runShapeSize = model.run_shape.reduce((a, b) => a * b, 1);
  if (runShapeSize !== perDigit * model.digits_per_run)
    throw new Error(`manifest: run_shape ${JSON.stringify(model.run_shape)} does not hold ${model.digits_per_run} digit(s) of ${model.input}`);

  const run = await runtime.open(join(dir, model.file), model);
  let maxDiff = 0, maxScaled = 0, sameArgmax = 0, correct = 0, runs = 0;
  const t0 = performance.now();
  for (let first = 0; first < count; first += model.digits_per_run) {
    const n = Math.min(model.digits_per_run, count - first);
    const data = input.slice(first * perDigit, (first + n) * perDigit);  // a copy: runtimes may keep it
    const { data: y, dims } = await run(data, model.run_shape);
    if (dims.length !== 2 || dims[0] !== n || dims[1] !== CLASSES)
      throw new Error(`digit ${first}: output shape [${dims}], expected [${n}, ${CLASSES}]`);
    for (let i = 0; i < n; ++i) {
      const e = (first + i) * CLASSES;
      for (let k = 0; k < CLASSES; ++k) {
        const d = Math.abs(y[i * CLASSES + k] - expected[e + k]);
        maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
        maxScaled = Number.isNaN(d) ? Infinity : Math.max(maxScaled, d / Math.max(1, Math.abs(expected[e + k])));
      }
      const p = argmax(y, i * CLASSES);
      sameArgmax += p === argmax(expected, e);
      correct += p === labels[first + i];
    }
    ++runs;
  }
  const ms = (performance.now() - t0) / runs;
  const ok = sameArgmax === count && maxScaled <= TOLERANCE;
  const line = `${ok ? 'PASS' : 'FAIL'} ${runtime.name.padEnd(16)} ${model.name.padEnd(20)} ` +
    `max|diff| ${maxDiff.toExponential(2)} (scaled ${maxScaled.toExponential(2)})  argmax same ${sameArgmax}/${count}  ` +
    `accuracy ${correct}/${count} (${(100 * correct / count).toFixed(1)} %)  ${ms.toFixed(2)} ms/run`;
  return { ok, line };
}

// ---- main ----

async function main(argv) {
  if (argv.length !== 1 || argv[0] === '-h' || argv[0] === '--help') {
    console.error('usage: node tests/js/check_runtimes.mjs OUTDIR   (OUTDIR written by examples/export_check)');
    return 2;
  }
  const dir = argv[0];
  const manifest = readJson(join(dir, 'manifest.json'));
  const labelsOf = (file) => {
    const labels = readJson(join(dir, file)).labels;
    if (!Array.isArray(labels) || labels.length !== manifest.count)
      throw new Error(`${file} has ${labels?.length} labels, manifest.json says ${manifest.count}`);
    return labels;
  };
  const cache = new Map();  // input files are large (the canvases: count x 1.2 MB): read each once
  const inputs = (name) => {
    if (!cache.has(name)) cache.set(name, readF32(join(dir, name)));
    return cache.get(name);
  };

  console.log(`node ${process.version}; ${runtimes.map((r) => `${r.name} ${r.version}`).join(', ')}; ` +
    `${manifest.count} images per model from ${dir}; tolerance |diff| <= ${TOLERANCE.toExponential()} * max(1, |expected|)`);
  let passed = 0, failed = 0;
  for (const runtime of runtimes) {
    for (const model of manifest.models) {
      if (!runtime.accepts(model)) {
        console.log(`skip ${runtime.name.padEnd(16)} ${model.name.padEnd(20)} (opset ${model.opset}: not supported by ${runtime.name})`);
        continue;
      }
      try {
        const labels = labelsOf(model.labels ?? 'labels.json');
        const { ok, line } = await check(runtime, model, dir, labels, inputs);
        console.log(line);
        ok ? ++passed : ++failed;
      } catch (e) {
        console.log(`FAIL ${runtime.name.padEnd(16)} ${model.name.padEnd(20)} ${e?.message ?? e}`);
        ++failed;
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`check_runtimes.mjs: ${e?.stack ?? e}`);
    console.log('0 passed, 1 failed');
    process.exitCode = 1;
  },
);
