// examples/web/teach-worker.js — the page's learner: nanotorch-wasm in a Web Worker, so that
// fine-tuning never blocks drawing. app.js talks to it with {id, type, ...args} messages and gets
// back {id, ok: true, result} or {id, ok: false, error}; it never touches the network after init
// (nanotorch.js and its wasm are fetched once, while the page loads).
//
// Requests:
//   init     {wasmUrl, shipped, current, replay: {images, labels}} loads nanotorch-wasm and the
//            model (`current`: the fine-tuned ONNX bytes from IndexedDB, or the shipped ones);
//   learn    {examples: [{pooled, label}], opts} fine-tunes on the user's drawings, returns
//            {bytes (the new model as ONNX, written by nanotorch-wasm), loss, firstLoss, ms};
//   load     {model} replaces the model (reset: the shipped bytes);
//   export   returns the current model as ONNX bytes (the download);
//   evaluate {images, labels} accuracy on 28x28 MNIST digits (tests);
//   predict  {rgba} probabilities for one canvas (tests).
//
// A drawing is kept as `pooled`: 784 Uint16 sums of the canvas's alpha over 10x10 blocks, which is
// all the model reads of it (its graph averages the alpha channel over the same blocks), so the
// worker rebuilds a canvas with the same block sums and the model sees exactly what it saw.
import { loadNanotorch } from './nanotorch.js';

const SIZE = 280;
const CELL = 10; // canvas pixels per model pixel, each way
const GRID = 28;

// How one correction fine-tunes. Chosen with a native simulation of the teaching test (the 80
// rotated drawings of tests/js/e2e_teach.mjs, 3 seeds per setting) and then measured in the page:
// half the batch from the user (all drawings every step) forgot 2-4 points of MNIST; 8 user
// drawings of 32 learned the style less (+28-40 points); this setting gave +36-42 points on the
// style and -0.2..+0.4 on MNIST, and a replay set of 5,000 digits forgot less than one of 2,000.
//   - each correction runs STEPS SGD steps on a batch of BATCH: up to USER_PER_CALL of the user's
//     drawings (the new one and a random choice of the earlier ones) and the rest MNIST replay
//     digits — replay keeps the model from forgetting MNIST while it learns the user's style;
//   - every earlier drawing is shifted by up to SHIFT model pixels each way, a new shift at every
//     correction, so a few drawings teach a style rather than their exact positions.
const LEARN = { steps: 10, lr: 0.02, momentum: 0.5, batch: 64 };
const USER_PER_CALL = 16;
const SHIFT = 2;

let nt = null;
let replay = null; // {images: Uint8Array(n*784), labels: Uint8Array(n)}

/** Deterministic PRNG (mulberry32): a given sequence of corrections always learns the same. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 280x280 RGBA canvas whose alpha sums over each 10x10 block are `pooled` (shifted by dx, dy
 * blocks; blocks shifted in from outside are empty): block sum S becomes S % 100 pixels of
 * floor(S / 100) + 1 and the rest floor(S / 100), the same sum, so the same model input.
 */
function canvasFromPooled(pooled, dx = 0, dy = 0) {
  const rgba = new Uint8Array(SIZE * SIZE * 4);
  for (let by = 0; by < GRID; ++by) {
    const sy = by - dy;
    if (sy < 0 || sy >= GRID) continue;
    for (let bx = 0; bx < GRID; ++bx) {
      const sx = bx - dx;
      if (sx < 0 || sx >= GRID) continue;
      const sum = pooled[sy * GRID + sx];
      if (!sum) continue;
      const base = Math.floor(sum / (CELL * CELL));
      let extra = sum - base * CELL * CELL;
      for (let y = 0; y < CELL; ++y) {
        const row = ((by * CELL + y) * SIZE + bx * CELL) * 4 + 3;
        for (let x = 0; x < CELL; ++x, --extra) rgba[row + 4 * x] = base + (extra > 0 ? 1 : 0);
      }
    }
  }
  return rgba;
}

const handlers = {
  async init({ wasmUrl, current, replay: r }) {
    nt = await loadNanotorch(wasmUrl);
    nt.loadModel(current);
    replay = r;
    return { replayDigits: r.labels.length };
  },

  learn({ examples }) {
    if (!nt) throw new Error('the learner is not initialised');
    if (!examples.length) throw new Error('learn: no drawings to learn from');
    const n = examples.length;
    const rand = rng(0x9e3779b9 ^ n); // seeded by how many drawings there are: reproducible
    // The newest drawing as drawn (the bars show it next), plus earlier ones, shifted.
    const earlier = Array.from({ length: n - 1 }, (_, i) => i);
    for (let i = earlier.length - 1; i > 0; --i) {
      const j = Math.floor(rand() * (i + 1));
      [earlier[i], earlier[j]] = [earlier[j], earlier[i]];
    }
    const chosen = earlier.slice(0, USER_PER_CALL - 1);
    const shift = () => Math.floor(rand() * (2 * SHIFT + 1)) - SHIFT;
    const batchExamples = [{ rgba: canvasFromPooled(examples[n - 1].pooled), label: examples[n - 1].label }];
    for (const i of chosen) batchExamples.push({ rgba: canvasFromPooled(examples[i].pooled, shift(), shift()), label: examples[i].label });

    // nanotorch-wasm fills each batch with replay digits drawn at random from what it is given;
    // hand it only this call's share (picked here), so the whole replay set is not copied each time.
    const perUser = Math.min(batchExamples.length, Math.ceil(LEARN.batch / 2));
    const want = LEARN.steps * (LEARN.batch - perUser);
    const images = new Uint8Array(want * GRID * GRID);
    const labels = new Uint8Array(want);
    const total = replay.labels.length;
    for (let k = 0; k < want; ++k) {
      const r = Math.floor(rand() * total);
      images.set(replay.images.subarray(r * GRID * GRID, (r + 1) * GRID * GRID), k * GRID * GRID);
      labels[k] = replay.labels[r];
    }
    const t0 = performance.now();
    const { loss, firstLoss } = nt.learn(batchExamples, { images, labels }, { ...LEARN, seed: n });
    const bytes = nt.exportOnnx();
    return { bytes, loss, firstLoss, ms: performance.now() - t0, used: batchExamples.length };
  },

  load({ model }) {
    nt.loadModel(model);
    return null;
  },

  export() {
    return nt.exportOnnx();
  },

  evaluate({ images, labels }) {
    return nt.evaluate(images, labels);
  },

  predict({ rgba }) {
    return nt.predict(rgba);
  },
};

self.onmessage = async ({ data }) => {
  const { id, type } = data;
  try {
    const handler = handlers[type];
    if (!handler) throw new Error(`unknown request "${type}"`);
    const result = await handler(data);
    const transfer = result instanceof Uint8Array ? [result.buffer] : result?.bytes ? [result.bytes.buffer] : [];
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
};
