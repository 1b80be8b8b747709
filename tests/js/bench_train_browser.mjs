// tests/js/bench_train_browser.mjs — training the seed's Net in a browser: nanotorch-wasm beside
// TensorFlow.js 4.22 (the one peer that trains in a browser), in the same headless Chromium.
//
//   node tests/js/bench_train_browser.mjs MODEL.onnx [--steps 10] [--calls 5] [--data data/mnist]
//        [--tfjs node_modules]   (where @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm are)
//
// Both train the same network (conv 1->10 k5, max-pool 2, relu, conv 10->20 k5, dropout, max-pool
// 2, relu, fc 320->50, relu, dropout, fc 50->10, log-softmax + NLL; NHWC in tfjs) with SGD lr 0.01
// momentum 0.5 at batch 64 on MNIST digits, and the result is ms per step (forward, backward,
// update), median over --calls calls of --steps steps after a warm-up:
//   nanotorch-wasm   nt.learn on the page's replay digits (the page's own module);
//   tfjs cpu         @tensorflow/tfjs's plain-JavaScript backend;
//   tfjs wasm        @tensorflow/tfjs-backend-wasm (SIMD). It has no Conv2DBackpropFilter kernel,
//                    so out of the box it cannot train a conv net; the bench registers one (below,
//                    a direct loop in JavaScript over the wasm heap) and reports both facts.
// Everything runs on the page's main thread, one thread each (no SharedArrayBuffer: the static
// server sends no cross-origin-isolation headers, as for the page).
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT, launchChromium, parseArgs, serveDir, stageSite } from './browser_lib.mjs';

const USAGE = 'usage: node tests/js/bench_train_browser.mjs MODEL.onnx [--steps N] [--calls N] [--data DIR] [--tfjs DIR]';

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
async function tfjsSteps({ steps, calls, backend, addKernel }) {
  const tf = window.tf;
  if (backend === 'wasm') {
    window.tf.wasm.setWasmPaths(new URL('tfjs/', document.baseURI).href);
    if (addKernel && !tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
      // dW[kh, kw, ci, co] = sum over n, oh, ow of x[n, oh*s + kh, ow*s + kw, ci] * dy[n, oh, ow, co]
      // (NHWC, stride s, 'valid' padding: what the seed's net needs), straight on the wasm heap.
      tf.registerKernel({
        kernelName: 'Conv2DBackpropFilter',
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend: b, attrs }) => {
          const { x, dy } = inputs;
          const { strides, pad, filterShape, dataFormat } = attrs;
          const s = Array.isArray(strides) ? strides : [strides, strides];
          if (pad !== 'valid' || dataFormat !== 'NHWC' || s[0] !== s[1]) throw new Error('Conv2DBackpropFilter: only NHWC, valid padding, equal strides');
          const [n, h, w, ci] = x.shape;
          const [, oh, ow, co] = dy.shape;
          const [kh, kw] = filterShape;
          const out = b.makeOutput([kh, kw, ci, co], 'float32');
          const dw = b.typedArrayFromHeap(out);
          const xv = b.typedArrayFromHeap(x);
          const dv = b.typedArrayFromHeap(dy);
          dw.fill(0);
          const stride = s[0];
          for (let b0 = 0; b0 < n; ++b0) {
            for (let y = 0; y < oh; ++y) {
              for (let xo = 0; xo < ow; ++xo) {
                const g = ((b0 * oh + y) * ow + xo) * co;
                for (let i = 0; i < kh; ++i) {
                  for (let j = 0; j < kw; ++j) {
                    const xi = ((b0 * h + y * stride + i) * w + xo * stride + j) * ci;
                    const wi = (i * kw + j) * ci * co;
                    for (let c = 0; c < ci; ++c) {
                      const xval = xv[xi + c];
                      const row = wi + c * co;
                      for (let o = 0; o < co; ++o) dw[row + o] += xval * dv[g + o];
                    }
                  }
                }
              }
            }
          }
          return out;
        },
      });
    }
  }
  await tf.setBackend(backend);
  await tf.ready();
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
  return { times, backend: tf.getBackend(), version: tf.version.tfjs };
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

async function main(argv) {
  const opts = parseArgs(argv, { steps: 10, calls: 5, data: join(ROOT, 'data/mnist'), tfjs: join(ROOT, 'node_modules') });
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
      rows.push({ label, ms: times ? median(times) : null, error: result.error });
    };
    const base = { steps: opts.steps, calls: opts.calls };
    await run('nanotorch-wasm (SIMD128)', nanotorchSteps, base);
    const tfScripts = ['tfjs/tf.min.js', 'tfjs/tf-backend-wasm.min.js'];
    await run('TensorFlow.js 4.22 wasm (SIMD), out of the box', tfjsSteps, { ...base, backend: 'wasm', addKernel: false }, tfScripts);
    await run('TensorFlow.js 4.22 wasm (SIMD) + a JS Conv2DBackpropFilter', tfjsSteps, { ...base, backend: 'wasm', addKernel: true }, tfScripts);
    await run('TensorFlow.js 4.22 cpu', tfjsSteps, { ...base, backend: 'cpu' }, tfScripts);
  } finally {
    await browser.close();
    await server.close();
    rmSync(site, { recursive: true, force: true });
  }
  console.log(`Chromium ${browser.version} (headless); the seed's Net, SGD lr 0.01 momentum 0.5, batch 64; ms per training step, median of ${opts.calls} x ${opts.steps} steps`);
  const nt = rows[0].ms;
  for (const r of rows) {
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
