// tests/js/bench_train_browser.mjs — training the seed's Net in a browser: nanotorch-wasm beside
// TensorFlow.js 4.22 (the one peer that trains in a browser), in the same headless Chromium.
//
//   node tests/js/bench_train_browser.mjs MODEL.onnx [--steps 10] [--calls 5] [--data data/mnist]
//        [--tfjs node_modules]   (where @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm are)
//        [--cpu 0]               (skip TF.js's cpu backend: about 100x slower, minutes per run)
//
// Both train the same network (conv 1->10 k5, max-pool 2, relu, conv 10->20 k5, dropout, max-pool
// 2, relu, fc 320->50, relu, dropout, fc 50->10, log-softmax + NLL; NHWC in tfjs) with SGD lr 0.01
// momentum 0.5 at batch 64 on MNIST digits, and the result is ms per step (forward, backward,
// update), median over --calls calls of --steps steps after a warm-up:
//   nanotorch-wasm   nt.learn on the page's replay digits (the page's own module);
//   tfjs cpu         @tensorflow/tfjs's plain-JavaScript backend;
//   tfjs wasm        @tensorflow/tfjs-backend-wasm (SIMD). It has no Conv2DBackpropFilter kernel,
//                    so out of the box it cannot train a conv net; the bench registers one and
//                    reports both facts. The kernel is the backend's own XNNPACK Conv2D on
//                    transposed operands (below), checked against a direct loop before timing, so
//                    TF.js runs every part of the step in its wasm SIMD kernels.
// Everything runs on the page's main thread, one thread each (no SharedArrayBuffer: the static
// server sends no cross-origin-isolation headers, as for the page).
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT, launchChromium, parseArgs, serveDir, stageSite } from './browser_lib.mjs';

const USAGE = 'usage: node tests/js/bench_train_browser.mjs MODEL.onnx [--steps N] [--calls N] [--data DIR] [--tfjs DIR] [--cpu 0|1]';

const TFJS_FILES = [
  ['@tensorflow/tfjs/dist/tf.min.js', 'tfjs/tf.min.js'],
  ['@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js', 'tfjs/tf-backend-wasm.min.js'],
  ['@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm', 'tfjs/tfjs-backend-wasm.wasm'],
  ['@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm', 'tfjs/tfjs-backend-wasm-simd.wasm'],
  ['@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm', 'tfjs/tfjs-backend-wasm-threaded-simd.wasm'],
  ['@tensorflow/tfjs/package.json', 'tfjs/package.json'],
];

/** In the page: per-step times of nanotorch-wasm's nt.learn at batch 64. */
async function nanotorchSteps({ steps, calls }) {
  const { loadNanotorch } = await import('./nanotorch.js');
  const nt = await loadNanotorch('nanotorch_wasm.wasm');
  const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  nt.loadModel(await bytes('onnx_model.onnx'));
  const replay = {
    images: (await bytes('replay-images-idx3-ubyte')).subarray(16),
    labels: (await bytes('replay-labels-idx1-ubyte')).subarray(8),
  };
  nt.learn([], replay, { steps: 2, batch: 64, lr: 0.01, momentum: 0.5 });
  const times = [];
  for (let c = 0; c < calls; ++c) {
    const t0 = performance.now();
    nt.learn([], replay, { steps, batch: 64, lr: 0.01, momentum: 0.5, seed: c + 1 });
    times.push((performance.now() - t0) / steps);
  }
  return times;
}

/** In the page: per-step times of TensorFlow.js on `backend`, or { error } if it cannot train. */
async function tfjsSteps({ steps, calls, backend, addKernel, fastInput }) {
  const tf = window.tf;
  if (backend === 'wasm') {
    window.tf.wasm.setWasmPaths(new URL('tfjs/', document.baseURI).href);
    if (addKernel && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
      // dW[kh, kw, ci, co] = sum over n, oh, ow of x[n, oh + kh, ow + kw, ci] * dy[n, oh, ow, co]
      // (NHWC, stride 1, 'valid' padding: what the seed's net needs) is itself a valid convolution
      // with the roles swapped: input channels become the batch, the batch becomes the channels,
      // and dy becomes the filter. So the kernel is three of the backend's own Transposes around
      // one of its own Conv2D (XNNPACK, SIMD), and TF.js trains at its real speed:
      //   conv2d(x as [ci, h, w, n], dy as [oh, ow, n, co]) = [ci, kh, kw, co] -> [kh, kw, ci, co].
      const run = (name, inputs, attrs, b) => tf.getKernel(name, 'wasm').kernelFunc({ inputs, backend: b, attrs });
      tf.registerKernel({
        kernelName: 'Conv2DBackpropFilter',
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend: b, attrs }) => {
          const { x, dy } = inputs;
          const { strides, pad, dataFormat, dilations = 1 } = attrs;
          const pair = (v) => (Array.isArray(v) ? v : [v, v]);
          const [sh, sw] = pair(strides), [dh, dw] = pair(dilations);
          if (pad !== 'valid' || dataFormat !== 'NHWC' || sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1) {
            throw new Error('Conv2DBackpropFilter: only NHWC, valid padding, stride 1, no dilation');
          }
          const xt = run('Transpose', { x }, { perm: [3, 1, 2, 0] }, b);
          const dyt = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }, b);
          const conv = run('Conv2D', { x: xt, filter: dyt },
            { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: null }, b);
          const out = run('Transpose', { x: conv }, { perm: [1, 2, 0, 3] }, b);
          for (const t of [xt, dyt, conv]) b.disposeData(t.dataId);
          return out;
        },
      });
    }
    if (fastInput) {
      // TF.js's own wasm Conv2DBackpropInput took 65 of 152 ms per step in a tf.profile with the
      // kernel above (its slowest kernel), so the fastest TF.js we could make also replaces it
      // by a Conv2D: for stride 1 and 'valid' padding, dx = conv2d(dy padded by k - 1, the
      // filter rotated by 180 degrees with in/out channels swapped).
      const run = (name, inputs, attrs, b) => tf.getKernel(name, 'wasm').kernelFunc({ inputs, backend: b, attrs });
      const builtin = tf.getKernel('Conv2DBackpropInput', 'wasm');
      tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
      tf.registerKernel({
        kernelName: 'Conv2DBackpropInput',
        backendName: 'wasm',
        kernelFunc: (args) => {
          const { inputs: { dy, filter }, backend: b, attrs: { strides, pad, dataFormat } } = args;
          const [sh, sw] = Array.isArray(strides) ? strides : [strides, strides];
          if (pad !== 'valid' || dataFormat !== 'NHWC' || sh !== 1 || sw !== 1) return builtin.kernelFunc(args);
          const [kh, kw] = filter.shape;
          const rotated = run('Reverse', { x: filter }, { dims: [0, 1] }, b);
          const flipped = run('Transpose', { x: rotated }, { perm: [0, 1, 3, 2] }, b);
          const out = run('Conv2D', { x: dy, filter: flipped },
            { strides: [1, 1], pad: [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: null }, b);
          for (const t of [rotated, flipped]) b.disposeData(t.dataId);
          return out;
        },
      });
    }
  }
  await tf.setBackend(backend);
  await tf.ready();
  let checkError = null;
  if (backend === 'wasm' && addKernel) {
    // The kernel against the definition (a direct loop, in double) on random data of the shapes
    // of the net's second conv, shrunk: max |error| relative to the largest |dW|.
    const [n, h, w, ci, co, k] = [3, 9, 8, 4, 5, 3];
    const [oh, ow] = [h - k + 1, w - k + 1];
    const xv = Float32Array.from({ length: n * h * w * ci }, (_, i) => Math.sin(i * 0.37));
    const dv = Float32Array.from({ length: n * oh * ow * co }, (_, i) => Math.cos(i * 0.11));
    const got = await tf.engine().runKernel('Conv2DBackpropFilter',
      { x: tf.tensor4d(xv, [n, h, w, ci]), dy: tf.tensor4d(dv, [n, oh, ow, co]) },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], filterShape: [k, k, ci, co] }).data();
    let maxErr = 0, maxRef = 0;
    for (let i = 0; i < k; ++i) for (let j = 0; j < k; ++j) for (let c = 0; c < ci; ++c) for (let o = 0; o < co; ++o) {
      let ref = 0;
      for (let b0 = 0; b0 < n; ++b0) for (let y = 0; y < oh; ++y) for (let x0 = 0; x0 < ow; ++x0) {
        ref += xv[((b0 * h + y + i) * w + x0 + j) * ci + c] * dv[((b0 * oh + y) * ow + x0) * co + o];
      }
      maxErr = Math.max(maxErr, Math.abs(got[((i * k + j) * ci + c) * co + o] - ref));
      maxRef = Math.max(maxRef, Math.abs(ref));
    }
    checkError = maxErr / maxRef;
    if (fastInput) {  // dx[n, y, x, c] = sum over i, j, o of dy[n, y - i, x - j, o] * W[i, j, c, o]
      const wv = Float32Array.from({ length: k * k * ci * co }, (_, i) => Math.sin(i * 0.23 + 1));
      const dx = await tf.engine().runKernel('Conv2DBackpropInput',
        { dy: tf.tensor4d(dv, [n, oh, ow, co]), filter: tf.tensor4d(wv, [k, k, ci, co]) },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], inputShape: [n, h, w, ci] }).data();
      let err = 0, big = 0;
      for (let b0 = 0; b0 < n; ++b0) for (let y = 0; y < h; ++y) for (let x0 = 0; x0 < w; ++x0) for (let c = 0; c < ci; ++c) {
        let ref = 0;
        for (let i = 0; i < k; ++i) for (let j = 0; j < k; ++j) {
          if (y - i < 0 || y - i >= oh || x0 - j < 0 || x0 - j >= ow) continue;
          for (let o = 0; o < co; ++o) ref += dv[((b0 * oh + y - i) * ow + x0 - j) * co + o] * wv[((i * k + j) * ci + c) * co + o];
        }
        err = Math.max(err, Math.abs(dx[((b0 * h + y) * w + x0) * ci + c] - ref));
        big = Math.max(big, Math.abs(ref));
      }
      checkError = Math.max(checkError, err / big);
    }
    // float32 sums of 126 products of magnitude <= 1 against a double sum: 1e-4 is ~100x their rounding
    if (!(checkError < 1e-4)) return { error: `Conv2DBackpropFilter is wrong: relative error ${checkError}` };
  }
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 10, kernelSize: 5 }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.reLU(),
      tf.layers.conv2d({ filters: 20, kernelSize: 5 }),
      tf.layers.dropout({ rate: 0.5 }), // element-wise: tfjs has no Dropout2d; the cost is the same
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.reLU(),
      tf.layers.flatten(),
      tf.layers.dense({ units: 50, activation: 'relu' }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  model.compile({ optimizer: tf.train.momentum(0.01, 0.5), loss: 'categoricalCrossentropy' });
  const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const images = (await bytes('replay-images-idx3-ubyte')).subarray(16);
  const labels = (await bytes('replay-labels-idx1-ubyte')).subarray(8);
  const batches = Array.from({ length: 8 }, (_, k) => tf.tidy(() => {
    const px = Float32Array.from(images.subarray(k * 64 * 784, (k + 1) * 64 * 784), (v) => (v / 255 - 0.1307) / 0.3081);
    return [tf.tensor4d(px, [64, 28, 28, 1]), tf.oneHot(tf.tensor1d(Array.from(labels.subarray(k * 64, (k + 1) * 64)), 'int32'), 10)];
  }));
  try {
    await model.trainOnBatch(...batches[0]);
  } catch (e) {
    return { error: e.message };
  }
  const times = [];
  for (let c = 0; c < calls; ++c) {
    const t0 = performance.now();
    for (let k = 0; k < steps; ++k) await model.trainOnBatch(...batches[k % batches.length]); // returns the loss: synced
    times.push((performance.now() - t0) / steps);
  }
  return { times, backend: tf.getBackend(), version: tf.version.tfjs, checkError };
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

async function main(argv) {
  const opts = parseArgs(argv, { steps: 10, calls: 5, data: join(ROOT, 'data/mnist'), tfjs: join(ROOT, 'node_modules'), cpu: 1 });
  if (opts.help || opts.positional.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const site = stageSite(opts.positional[0], opts.data);
  for (const [src, dest] of TFJS_FILES) {
    const from = join(opts.tfjs, src);
    if (!existsSync(from)) throw new Error(`${from} is missing — install the JavaScript packages with: ONNXRUNTIME_NODE_INSTALL=skip npm ci`);
    mkdirSync(join(site, 'tfjs'), { recursive: true });
    copyFileSync(from, join(site, dest));
  }
  const server = await serveDir(site);
  const browser = await launchChromium();
  const rows = [];
  try {
    const run = async (label, fn, args, scripts = []) => {
      const page = await browser.context.newPage();
      await page.goto(`${server.origin}/`);
      await page.evaluate(() => window.nanotorch.ready);
      for (const src of scripts) await page.addScriptTag({ url: src });
      const result = await page.evaluate(fn, args);
      await page.close();
      const times = Array.isArray(result) ? result : result.times;
      rows.push({ label, ms: times ? median(times) : null, error: result.error, checkError: result.checkError });
    };
    const base = { steps: opts.steps, calls: opts.calls };
    await run('nanotorch-wasm (SIMD128)', nanotorchSteps, base);
    const tfScripts = ['tfjs/tf.min.js', 'tfjs/tf-backend-wasm.min.js'];
    await run('TensorFlow.js 4.22 wasm (SIMD), out of the box', tfjsSteps, { ...base, backend: 'wasm', addKernel: false }, tfScripts);
    await run('TensorFlow.js 4.22 wasm (SIMD) + Conv2DBackpropFilter as its own Conv2D', tfjsSteps, { ...base, backend: 'wasm', addKernel: true }, tfScripts);
    await run('TensorFlow.js 4.22 wasm (SIMD) + both conv gradients as its own Conv2D', tfjsSteps, { ...base, backend: 'wasm', addKernel: true, fastInput: true }, tfScripts);
    if (opts.cpu) await run('TensorFlow.js 4.22 cpu', tfjsSteps, { ...base, backend: 'cpu' }, tfScripts);
  } finally {
    await browser.close();
    await server.close();
    rmSync(site, { recursive: true, force: true });
  }
  console.log(`Chromium ${browser.version} (headless); the seed's Net, SGD lr 0.01 momentum 0.5, batch 64; ms per training step, median of ${opts.calls} x ${opts.steps} steps`);
  const nt = rows[0].ms;
  for (const r of rows) {
    if (r.checkError != null) console.log(`(${r.label}: its added kernels match a direct loop, relative error ${r.checkError.toExponential(1)})`);
    console.log(`| ${r.label} | ${r.ms === null ? `cannot train: ${r.error.slice(0, 120)}` : `${r.ms.toFixed(1)} ms`} | ${r.ms === null || !nt ? '' : `${(r.ms / nt).toFixed(1)}x nanotorch-wasm`} |`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`bench_train_browser.mjs: ${(process.env.DEBUG ? e?.stack : e?.message) ?? e}`);
    process.exitCode = 1;
  },
);
