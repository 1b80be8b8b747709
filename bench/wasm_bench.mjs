// bench/wasm_bench.mjs — nanotorch-wasm beside onnxruntime-web (its wasm backend) in node, same
// process, same model, interleaved: batch-1 canvas inference, and one training step of the seed's
// net at batch 64 in wasm. Timings are printed, never asserted (docs/WASM.md has a run).
//
//   node bench/wasm_bench.mjs WASM MODEL.onnx MNIST_DIR [--runs N]
//
// MODEL.onnx: a canvas model (mnist_train's out/onnx_model.onnx, or export_check's canvas_opset9.onnx).
// Both runtimes get the same canvas (a test digit drawn as the page would send it); the first 50
// runs of each are warm-up (V8 compiles wasm in tiers: the baseline code is several times slower).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import * as ortWeb from 'onnxruntime-web';

import { loadNanotorch, CANVAS_BYTES } from '../examples/web/nanotorch.js';

const args = process.argv.slice(2);
const [wasmPath, modelPath, mnistDir] = args;
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 300;
if (!mnistDir) {
  console.error('usage: node bench/wasm_bench.mjs WASM MODEL.onnx MNIST_DIR [--runs N]');
  process.exit(2);
}
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

const images = readFileSync(join(mnistDir, 't10k-images-idx3-ubyte')).subarray(16);
const labels = readFileSync(join(mnistDir, 't10k-labels-idx1-ubyte')).subarray(8);
const canvas = new Uint8Array(CANVAS_BYTES);
for (let y = 0; y < 280; ++y) for (let x = 0; x < 280; ++x) canvas[(y * 280 + x) * 4 + 3] = images[((y / 10) | 0) * 28 + ((x / 10) | 0)];

const model = readFileSync(modelPath);
const nt = await loadNanotorch(wasmPath);
nt.loadModel(model);
ortWeb.env.wasm.numThreads = 1;  // as nanotorch-wasm; a page without cross-origin isolation gets 1 anyway
const session = await ortWeb.InferenceSession.create(model, { executionProviders: ['wasm'] });
const input = session.inputNames[0];

// Inference: the page's path for each runtime: RGBA bytes -> probabilities.
const tNt = [], tOrt = [];
for (let i = 0; i < runs + 50; ++i) {
  let t = performance.now();
  nt.predict(canvas);
  const a = performance.now() - t;
  t = performance.now();
  await session.run({ [input]: new ortWeb.Tensor('float32', Float32Array.from(canvas), [CANVAS_BYTES]) });
  const b = performance.now() - t;
  if (i >= 50) { tNt.push(a); tOrt.push(b); }
}
// CPU time per inference of each runtime alone (this process's threads; see the training note below).
const cpuPer = async (fn, n) => {
  const c = process.cpuUsage();
  for (let i = 0; i < n; ++i) await fn();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1000 / n;
};
const cNt = await cpuPer(() => nt.predict(canvas), runs);
const cOrt = await cpuPer(() => session.run({ [input]: new ortWeb.Tensor('float32', Float32Array.from(canvas), [CANVAS_BYTES]) }), runs);
console.log(`inference CPU time per run: nanotorch-wasm ${cNt.toFixed(3)} ms, onnxruntime-web ${cOrt.toFixed(3)} ms, ` +
  `ratio ${(cOrt / cNt).toFixed(2)}`);
const mNt = median(tNt), mOrt = median(tOrt);
console.log(`inference, batch 1 canvas (median of ${runs}): nanotorch-wasm ${mNt.toFixed(3)} ms, ` +
  `onnxruntime-web ${ortWeb.env.versions?.web ?? ''} wasm ${mOrt.toFixed(3)} ms, ratio ${(mOrt / mNt).toFixed(2)}`);

// Training: one SGD step at batch 64 of replayed MNIST digits (no drawings: the seed's step).
const replay = { images: images.subarray(0, 1000 * 784), labels: labels.subarray(0, 1000) };
const steps = [];
for (let i = 0; i < 40; ++i) {
  const t = performance.now();
  nt.learn([], replay, { steps: 1, batch: 64, lr: 0.01, momentum: 0.5, seed: i });
  if (i >= 10) steps.push(performance.now() - t);
}
console.log(`training step, batch 64 (median of ${steps.length}, incl. copying 1000 replay digits in): ` +
  `nanotorch-wasm ${median(steps).toFixed(2)} ms`);
// On a shared machine wall time is mostly other processes' (a step spans many scheduler slices);
// the process's CPU time is the cost of the step itself (V8's compiler threads are idle by now).
const t = performance.now(), cpu = process.cpuUsage();
nt.learn([], replay, { steps: 20, batch: 64, lr: 0.01, momentum: 0.5, seed: 99 });
const used = process.cpuUsage(cpu);
console.log(`20 steps in one learn() call: ${((performance.now() - t) / 20).toFixed(2)} ms wall, ` +
  `${((used.user + used.system) / 1000 / 20).toFixed(2)} ms CPU per step`);

// One correction of the page (examples/web/teach-worker.js's settings): 10 SGD steps at batch 64
// with 16 drawings (test digits drawn as canvases) among replay digits, lr 0.02, momentum 0.5,
// then exportOnnx, as the worker does before the page hands the model to its runtime. CPU time,
// median of 10 corrections after 3 warm-ups.
const drawings = Array.from({ length: 16 }, (_, i) => {
  const c = new Uint8Array(CANVAS_BYTES);
  const px = images.subarray((1000 + i) * 784, (1001 + i) * 784);
  for (let y = 0; y < 280; ++y) for (let x = 0; x < 280; ++x) c[(y * 280 + x) * 4 + 3] = px[((y / 10) | 0) * 28 + ((x / 10) | 0)];
  return { rgba: c, label: labels[1000 + i] };
});
const share = { images: images.subarray(2000 * 784, 2480 * 784), labels: labels.subarray(2000, 2480) };
const learnCpu = [], exportCpu = [];
for (let i = 0; i < 13; ++i) {
  const c0 = process.cpuUsage();
  nt.learn(drawings, share, { steps: 10, lr: 0.02, momentum: 0.5, batch: 64, seed: i });
  const c1 = process.cpuUsage();
  nt.exportOnnx();
  const c2 = process.cpuUsage();
  if (i >= 3) {
    learnCpu.push((c1.user + c1.system - c0.user - c0.system) / 1000);
    exportCpu.push((c2.user + c2.system - c1.user - c1.system) / 1000);
  }
}
console.log(`one correction (teach-worker.js: 10 steps, batch 64, 16 drawings + replay, then exportOnnx), CPU median: ` +
  `learn ${median(learnCpu).toFixed(1)} ms + exportOnnx ${median(exportCpu).toFixed(1)} ms`);
