// examples/web/app.js — the draw-a-digit page: pointer drawing on a 280x280 canvas, the exported
// nanotorch model run on the canvas's raw RGBA bytes, ten probability bars.
//
// The model (onnx_model.onnx next to index.html) is the seed's InferenceNet: input "input" is
// float32 [313600] = getImageData(0, 0, 280, 280).data as is (0..255, RGBA order); the graph keeps
// the alpha channel, average-pools 10x10 down to 28x28 and normalises like MNIST, so the page does
// no preprocessing at all. Two consequences shape the drawing code: ink must be opaque (alpha is
// the only channel read), and "blank" means transparent pixels (clearRect), not white ones.
//
// Runtimes, all loaded from local files under vendor/ (scripts/serve.sh copies them from
// node_modules; nothing comes from a CDN, so the page works offline):
//   ?runtime=ort     (default) onnxruntime-web, wasm backend, single thread — one thread needs no
//                    cross-origin isolation (SharedArrayBuffer), so a plain static server works.
//   ?runtime=onnxjs  ONNX.js 0.1.8 as in the blog post, wasm backend (&backend=cpu for its plain
//                    JavaScript kernels). The wasm backend fetches onnx-wasm.wasm from the page's
//                    folder (a path fixed inside ONNX.js), so serve.sh puts it next to index.html.
//
// For tests and benchmarks the page exposes window.nanotorch (ready, settled()) and
// window.nanotorchBench(n). It deliberately has no bundler, no framework and no build step.

const MODEL_URL = 'onnx_model.onnx';
const SIZE = 280;             // canvas pixels per side; the model's input is SIZE * SIZE * 4 floats
const CLASSES = 10;
// Pen width in canvas pixels. The model average-pools 10x10 blocks, so 24 px becomes a 2.4-pixel
// stroke at 28x28, with soft edges like MNIST's anti-aliased digits: MNIST's mean stroke width
// (ink mass / skeleton length over the first 1000 test digits) is 2.4 px. Accuracy is flat around
// it (redrawn test digits: 92-93 % for any width from 16 to 32 px), so this is about looking
// right, not tuning. Round caps and joins keep stroke ends and corners full, as a pen does.
const PEN_WIDTH = 24;

// ---- page elements ----

const $ = (id) => document.getElementById(id);
const canvas = $('canvas');
const ctx = canvas.getContext('2d', { willReadFrequently: true }); // CPU-backed: fast getImageData
const hint = $('canvas-hint');
const errorBox = $('error');
const statusRuntime = $('status-runtime');
const statusTime = $('status-time');
const columns = Array.from({ length: CLASSES }, (_, i) => $(`prediction-${i}`));
const bars = columns.map((col) => col.querySelector('.prediction-bar'));

/** Shows an error on the page (and in the console): a failed load must not look like a hang. */
function showError(what, err) {
  const detail = err instanceof Error ? err.message : String(err);
  console.error(`${what}:`, err);
  errorBox.textContent = errorBox.hidden ? `${what}: ${detail}` : `${errorBox.textContent}\n${what}: ${detail}`;
  errorBox.hidden = false;
}

window.addEventListener('error', (e) => showError('Error', e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showError('Error', e.reason));

// ---- runtimes ----
// Each runtime: label, and open(modelBytes) -> { backend, version, run(Float32Array) -> Float32Array(10) }.

/** Loads a classic (UMD) script once; ONNX.js ships no ES module build. */
function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src} (run scripts/serve.sh, which copies it from node_modules)`));
    document.head.append(script);
  });
}

/** The version in a vendored package.json, or '' when it is missing: the label is cosmetic. */
async function vendorVersion(dir) {
  try {
    const res = await fetch(`${dir}/package.json`);
    return res.ok ? (await res.json()).version ?? '' : '';
  } catch {
    return '';
  }
}

const runtimes = {
  ort: {
    label: 'onnxruntime-web',
    async open(modelBytes) {
      const dir = 'vendor/ort';
      let ort;
      try {
        ort = await import(`./${dir}/ort.wasm.min.mjs`);
      } catch (err) {
        throw new Error(`could not load ${dir}/ort.wasm.min.mjs (run scripts/serve.sh, which copies it from node_modules): ${err.message}`);
      }
      // Where the Emscripten glue (.mjs) and the .wasm live; absolute, because the glue is
      // imported from inside the library and would otherwise resolve against the library's URL.
      ort.env.wasm.wasmPaths = new URL(`${dir}/`, document.baseURI).href;
      ort.env.wasm.numThreads = 1;
      const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] });
      const [inputName] = session.inputNames;
      const [outputName] = session.outputNames;
      return {
        backend: 'wasm',
        version: ort.env.versions?.web ?? (await vendorVersion(dir)),
        async run(pixels) {
          const out = await session.run({ [inputName]: new ort.Tensor('float32', pixels, [pixels.length]) });
          return out[outputName].data;
        },
      };
    },
  },
  onnxjs: {
    label: 'ONNX.js',
    async open(modelBytes) {
      const dir = 'vendor/onnxjs';
      await loadScript(`${dir}/onnx.min.js`);
      const backend = new URLSearchParams(location.search).get('backend') ?? 'wasm';
      if (backend !== 'cpu' && backend !== 'wasm') throw new Error(`unknown ONNX.js backend "${backend}" (use cpu or wasm)`);
      const { onnx } = window;
      // No worker threads: ONNX.js would spawn ceil(cores / 2) - 1 of them, each loading
      // onnx-worker.js from the page's folder, to split a convolution this small — not worth
      // the extra file and start-up, and single-threaded like the onnxruntime-web setup.
      onnx.backend.wasm.worker = 0;
      const session = new onnx.InferenceSession({ backendHint: backend });
      await session.loadModel(modelBytes);
      return {
        backend,
        version: await vendorVersion(dir),
        async run(pixels) {
          const out = await session.run([new onnx.Tensor(pixels, 'float32', [pixels.length])]);
          return out.values().next().value.data;
        },
      };
    },
  },
};

// ---- inference ----

const params = new URLSearchParams(location.search);
const runtimeName = params.get('runtime') ?? 'ort';
const timings = { modelLoaded: null, firstPrediction: null }; // ms since navigation start
let model = null;   // the opened runtime, once loaded
let queue = Promise.resolve(); // serialises session runs: runtimes do not allow overlapping runs

/** Runs the model on the canvas as it is now; one run at a time, in call order. */
function runModel() {
  const result = queue.then(async () => {
    const start = performance.now();
    const pixels = new Float32Array(ctx.getImageData(0, 0, SIZE, SIZE).data); // 0..255, RGBA
    const t0 = performance.now();
    const probs = await model.run(pixels);
    const end = performance.now();
    if (probs.length !== CLASSES) throw new Error(`the model returned ${probs.length} values, expected ${CLASSES}`);
    return { probs: Array.from(probs), ms: end - t0, totalMs: end - start };
  });
  queue = result.catch(() => {}); // a failed run must not block the next one
  return result;
}

async function loadModel() {
  const runtime = runtimes[runtimeName];
  document.querySelectorAll('.runtime-switch a').forEach((a) => a.classList.toggle('active', a.dataset.runtime === runtimeName));
  if (!runtime) throw new Error(`unknown runtime "${runtimeName}" (use ?runtime=ort or ?runtime=onnxjs)`);
  $('runtime-title').textContent = runtime.label;

  const res = await fetch(MODEL_URL);
  if (!res.ok) {
    throw new Error(`${MODEL_URL}: HTTP ${res.status} ${res.statusText} (train and export it with scripts/run.sh, then serve it with scripts/serve.sh)`);
  }
  const modelBytes = new Uint8Array(await res.arrayBuffer());
  model = await runtime.open(modelBytes);
  timings.modelLoaded = performance.now();
  statusRuntime.textContent = [runtime.label, model.version, `(${model.backend})`].filter(Boolean).join(' ');

  // One warm-up run on the blank canvas: the first run pays for memory planning and kernel
  // set-up, and should not be the one that lags behind the user's first stroke.
  const { ms } = await runModel();
  timings.firstPrediction = performance.now();
  statusTime.textContent = `${ms.toFixed(1)} ms (warm-up)`;
  hint.hidden = true;
  canvas.classList.add('ready');
  return { runtime: runtimeName, version: model.version, backend: model.backend, ...timings };
}

// ---- predictions ----
// Drawing bumps `drawn`; at most one prediction per animation frame, and never two at once: a
// stroke that moves while a run is in flight is picked up by the next frame after that run.

let drawn = 0;        // canvas version: bumped by every stroke segment and by CLEAR
let shown = 0;        // canvas version the bars show
let clears = 0;       // bumped by CLEAR, so a run that started before it cannot repaint the bars
let frameQueued = false;
let predicting = false;
let waiters = [];     // settled() promises

function showBars(probs) {
  let top = 0;
  for (let i = 1; i < CLASSES; ++i) if (probs[i] > probs[top]) top = i;
  probs.forEach((p, i) => {
    bars[i].style.height = `${(100 * p).toFixed(1)}%`;
    columns[i].title = `${i}: ${(100 * p).toFixed(1)} %`;
    columns[i].classList.toggle('top-prediction', i === top);
  });
}

function resetBars() {
  columns.forEach((col, i) => {
    bars[i].style.height = '0';
    col.title = '';
    col.classList.remove('top-prediction');
  });
}

function isSettled() {
  return shown === drawn && !frameQueued && !predicting;
}

function notifySettled() {
  if (!isSettled()) return;
  const ready = waiters;
  waiters = [];
  ready.forEach((resolve) => resolve());
}

function requestPrediction() {
  if (!model || frameQueued || predicting) return;
  frameQueued = true;
  requestAnimationFrame(predictFrame);
}

async function predictFrame() {
  frameQueued = false;
  const version = drawn;
  const clearsBefore = clears;
  predicting = true;
  try {
    const { probs, ms } = await runModel();
    if (clears === clearsBefore) {
      showBars(probs);
      shown = version;
    }
    statusTime.textContent = `${ms.toFixed(1)} ms`;
  } catch (err) {
    showError('Inference failed', err);
    if (clears === clearsBefore) shown = version; // do not retry the same canvas forever
  } finally {
    predicting = false;
  }
  if (shown !== drawn) requestPrediction();
  notifySettled();
}

function canvasChanged() {
  ++drawn;
  requestPrediction();
}

function clearCanvas() {
  ctx.clearRect(0, 0, SIZE, SIZE); // transparent, not white: the model reads alpha
  ++clears;
  shown = ++drawn;
  resetBars();
  notifySettled();
}

// ---- drawing ----
// Pointer events cover mouse, touch and pen alike; the pointer is captured so that a stroke
// leaving the canvas still ends cleanly, and coalesced events keep fast strokes smooth.

let activePointer = null;
let last = null;

function canvasPoint(e) {
  // The canvas may be displayed smaller than 280x280 (narrow screens): map the pointer from the
  // content box (inside the CSS border) back to canvas pixels.
  const rect = canvas.getBoundingClientRect();
  return {
    x: ((e.clientX - rect.left - canvas.clientLeft) * SIZE) / canvas.clientWidth,
    y: ((e.clientY - rect.top - canvas.clientTop) * SIZE) / canvas.clientHeight,
  };
}

function segment(from, to) {
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

function dot(p) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function setUpPen() {
  ctx.lineWidth = PEN_WIDTH;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = '#000'; // opaque: the ink lives in the alpha channel
  ctx.fillStyle = '#000';
}

canvas.addEventListener('pointerdown', (e) => {
  if (!model || activePointer !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
  e.preventDefault();
  activePointer = e.pointerId;
  canvas.setPointerCapture(e.pointerId);
  last = canvasPoint(e);
  dot(last); // a tap is a dot
  canvasChanged();
});

canvas.addEventListener('pointermove', (e) => {
  if (e.pointerId !== activePointer) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) {
    const p = canvasPoint(ev);
    segment(last, p);
    last = p;
  }
  canvasChanged();
});

function endStroke(e) {
  if (e.pointerId !== activePointer) return;
  activePointer = null;
  last = null;
}
canvas.addEventListener('pointerup', endStroke);
canvas.addEventListener('pointercancel', endStroke);

$('clear-button').addEventListener('click', clearCanvas);

// ---- test and benchmark hooks ----

/**
 * Runs the model `n` times on the current canvas (queued after any pending prediction) and
 * returns { runtime, backend, version, times, totals }: per run, the session's run alone and with
 * reading the canvas (getImageData + conversion to float32) — the latency a stroke sees.
 * Used by tests/js/bench_browser.mjs.
 */
async function bench(n = 100) {
  if (!model) throw new Error('the model is not loaded');
  const times = [];
  const totals = [];
  for (let i = 0; i < n; ++i) {
    const { ms, totalMs } = await runModel();
    times.push(ms);
    totals.push(totalMs);
  }
  return { runtime: runtimeName, backend: model.backend, version: model.version, times, totals };
}

const ready = (async () => {
  setUpPen();
  ctx.clearRect(0, 0, SIZE, SIZE);
  try {
    return await loadModel();
  } catch (err) {
    statusRuntime.textContent = 'not loaded';
    hint.textContent = 'The model could not be loaded';
    showError('Could not load the model', err);
    throw err;
  }
})();
ready.catch(() => {}); // shown on the page above; keep it out of unhandledrejection

window.nanotorch = {
  /** Resolves with { runtime, version, backend, modelLoaded, firstPrediction } once usable. */
  ready,
  /** Resolves once the bars show the prediction for the canvas as it is now. */
  settled: () => (isSettled() ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
};
window.nanotorchBench = bench;
