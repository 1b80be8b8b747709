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
//   ?runtime=nanotorch  nanotorch itself, compiled to WebAssembly (nanotorch.js loads
//                    nanotorch_wasm.wasm; scripts/build_wasm.sh builds it, serve.sh copies it).
//
// Teaching ("that was a K"): the page keeps the user's corrected drawings and fine-tunes the model
// on them in a Web Worker (teach-worker.js, nanotorch-wasm inside), mixed with a replay set of
// MNIST training digits served beside the page (replay-*-ubyte, made by serve.sh), then hands the
// new model's ONNX bytes to whichever runtime draws the bars. The fine-tuned model and the drawings
// are kept in IndexedDB until "Reset model". Everything the page needs is fetched while it loads;
// after that it makes no network request (tests/js/e2e_teach.mjs checks).
//
// For tests and benchmarks the page exposes window.nanotorch (ready, teachReady, settled(),
// evaluate(), lastCorrection) and window.nanotorchBench(n). It deliberately has no bundler, no
// framework and no build step.

const MODEL_URL = 'onnx_model.onnx';
const NANOTORCH_WASM_URL = 'nanotorch_wasm.wasm';
const REPLAY_IMAGES_URL = 'replay-images-idx3-ubyte';
const REPLAY_LABELS_URL = 'replay-labels-idx1-ubyte';
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
// Each runtime: label, and open(modelBytes) -> { backend, version, input(rgba) -> what run takes,
// run(input) -> Float32Array(10), update(modelBytes) (a fine-tuned model, same graph) }.
// ONNX runtimes take the canvas as float32; nanotorch-wasm takes the RGBA bytes as they are.

const toFloat = (rgba) => new Float32Array(rgba); // 0..255, RGBA

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
      let session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] });
      const [inputName] = session.inputNames;
      const [outputName] = session.outputNames;
      return {
        backend: 'wasm',
        version: ort.env.versions?.web ?? (await vendorVersion(dir)),
        input: toFloat,
        async run(pixels) {
          const out = await session.run({ [inputName]: new ort.Tensor('float32', pixels, [pixels.length]) });
          return out[outputName].data;
        },
        async update(bytes) {
          const next = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
          const old = session;
          session = next;
          await old.release();
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
      let session = new onnx.InferenceSession({ backendHint: backend });
      await session.loadModel(modelBytes);
      return {
        backend,
        version: await vendorVersion(dir),
        input: toFloat,
        async run(pixels) {
          const out = await session.run([new onnx.Tensor(pixels, 'float32', [pixels.length])]);
          return out.values().next().value.data;
        },
        async update(bytes) {
          const next = new onnx.InferenceSession({ backendHint: backend });
          await next.loadModel(bytes);
          session = next;
        },
      };
    },
  },
  nanotorch: {
    label: 'nanotorch-wasm',
    async open(modelBytes) {
      let loadNanotorch;
      try {
        ({ loadNanotorch } = await import('./nanotorch.js'));
      } catch (err) {
        throw new Error(`could not load nanotorch.js: ${err.message}`);
      }
      // On the main thread, beside the learner's own instance in the worker: inference is one
      // synchronous call per frame, which a round trip through the worker would only delay.
      const nt = await loadNanotorch(NANOTORCH_WASM_URL);
      nt.loadModel(modelBytes);
      return {
        backend: 'wasm',
        version: '',
        input: (rgba) => rgba,
        async run(rgba) {
          return nt.predict(rgba);
        },
        async update(bytes) {
          nt.loadModel(bytes);
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
    const pixels = model.input(ctx.getImageData(0, 0, SIZE, SIZE).data);
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
  if (!runtime) throw new Error(`unknown runtime "${runtimeName}" (use ?runtime=ort, ?runtime=onnxjs or ?runtime=nanotorch)`);
  $('runtime-title').textContent = runtime.label;

  const { current } = await startup;
  model = await runtime.open(current.slice()); // a copy: a runtime may keep or detach what it gets
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
let inked = false;    // anything drawn since the last CLEAR (teaching needs a drawing)

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
  return shown === drawn && !frameQueued && !predicting && teaching === 0;
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
  inked = false;
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
  inked = true;
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

// ---- the shipped model, and what IndexedDB kept of the user's teaching ----
// IndexedDB (database "nanotorch", store "teach", key "state") holds { base, model, examples }:
// `base` fingerprints the shipped model the fine-tuning started from (a retrained shipped model
// makes the old fine-tuning meaningless, so it is dropped), `model` the fine-tuned ONNX bytes,
// `examples` the user's drawings as the model reads them ([{ pooled: Uint16Array(784), label }],
// see poolCanvas). Nothing else is stored, and nothing leaves the browser.

const DB_NAME = 'nanotorch';
const DB_STORE = 'teach';
const DB_KEY = 'state';

/** FNV-1a over the bytes and their length, as 8 hex digits: tells shipped models apart. */
function fingerprint(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; ++i) h = Math.imul(h ^ bytes[i], 0x01000193);
  return `${(h >>> 0).toString(16).padStart(8, '0')}-${bytes.length}`;
}

let dbPromise = null;
/** The database, or null where IndexedDB is unavailable (teaching then lasts until reload). */
function openDb() {
  dbPromise ??= new Promise((resolve) => {
    let req;
    try {
      req = indexedDB.open(DB_NAME, 1);
    } catch {
      resolve(null);
      return;
    }
    req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
  });
  return dbPromise;
}

/** Runs one request on the store; resolves with its result. */
async function dbRequest(mode, fn) {
  const db = await openDb();
  if (!db) return undefined;
  return new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, mode);
    const req = fn(tx.objectStore(DB_STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

const saveState = (state) => dbRequest('readwrite', (store) => store.put(state, DB_KEY));
const clearState = () => dbRequest('readwrite', (store) => store.delete(DB_KEY));

/**
 * Fetches the shipped model and reads the stored teaching. Resolves with { shipped, base,
 * current, examples }: `current` is the fine-tuned model when one was stored for this shipped
 * model, else the shipped one.
 */
async function fetchStartup() {
  const res = await fetch(MODEL_URL);
  if (!res.ok) {
    throw new Error(`${MODEL_URL}: HTTP ${res.status} ${res.statusText} (train and export it with scripts/run.sh, then serve it with scripts/serve.sh)`);
  }
  const shipped = new Uint8Array(await res.arrayBuffer());
  const base = fingerprint(shipped);
  let stored;
  try {
    stored = await dbRequest('readonly', (store) => store.get(DB_KEY));
  } catch (err) {
    console.warn('could not read the stored teaching:', err);
  }
  if (stored && stored.base === base && stored.model instanceof Uint8Array && Array.isArray(stored.examples)) {
    return { shipped, base, current: stored.model, examples: stored.examples };
  }
  if (stored) await clearState().catch(() => {}); // made from another shipped model: start over
  return { shipped, base, current: shipped, examples: [] };
}

const startup = fetchStartup();

// ---- the learner (teach-worker.js) ----

const teachSection = document.querySelector('.teach');
const teachButtons = Array.from({ length: CLASSES }, (_, k) => $(`teach-${k}`));
const learnStatus = $('learn-status');
const statusLearn = $('status-learn');
const resetButton = $('reset-model');
const downloadButton = $('download-model');

let worker = null;
let nextRequest = 0;
const pending = new Map(); // request id -> { resolve, reject }

/** Sends one request to the learner; resolves with its result, rejects with its error. */
function callWorker(type, args = {}, transfer = []) {
  return new Promise((resolve, reject) => {
    if (!worker) {
      reject(new Error('the learner is not running'));
      return;
    }
    const id = ++nextRequest;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...args }, transfer);
  });
}

function startWorker() {
  worker = new Worker('teach-worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => {
    const request = pending.get(data.id);
    if (!request) return;
    pending.delete(data.id);
    if (data.ok) request.resolve(data.result);
    else request.reject(new Error(data.error));
  };
  worker.onerror = (e) => {
    e.preventDefault();
    const err = new Error(`teach-worker.js: ${e.message || 'could not start (module workers need a current browser)'}`);
    for (const request of pending.values()) request.reject(err);
    pending.clear();
    worker = null;
    showError('The learner stopped', err);
  };
}

/** Reads an IDX file of unsigned bytes, checking its header; returns { shape, data }. */
function parseIdx(bytes, dims, url) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * dims;
  if (bytes.length < header) throw new Error(`${url}: ${bytes.length} bytes, shorter than its ${header}-byte header`);
  const magic = view.getUint32(0);
  if (magic !== 0x800 + dims) throw new Error(`${url}: magic 0x${magic.toString(16)}, expected 0x${(0x800 + dims).toString(16)}`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + size) throw new Error(`${url}: ${bytes.length} bytes, its shape [${shape}] needs ${header + size}`);
  return { shape, data: bytes.subarray(header) };
}

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText} (scripts/serve.sh copies it from data/mnist)`);
  return new Uint8Array(await res.arrayBuffer());
}

/** The replay set: MNIST training digits that fine-tuning mixes in, so MNIST is not forgotten. */
async function fetchReplay() {
  const [imageBytes, labelBytes] = await Promise.all([fetchBytes(REPLAY_IMAGES_URL), fetchBytes(REPLAY_LABELS_URL)]);
  const images = parseIdx(imageBytes, 3, REPLAY_IMAGES_URL);
  const labels = parseIdx(labelBytes, 1, REPLAY_LABELS_URL);
  if (images.shape[1] !== 28 || images.shape[2] !== 28) throw new Error(`${REPLAY_IMAGES_URL}: digits are ${images.shape.slice(1).join('x')}, expected 28x28`);
  if (labels.shape[0] !== images.shape[0]) throw new Error(`${images.shape[0]} replay digits but ${labels.shape[0]} labels`);
  return { images: images.data.slice(), labels: labels.data.slice() };
}

// ---- teaching ----

let shipped = null;   // the shipped model's bytes
let base = '';        // its fingerprint
let examples = [];    // the user's drawings: [{ pooled, label }]
let teaching = 0;     // corrections in flight (settled() waits for them)
let teachQueue = Promise.resolve();
let lastCorrection = null;

/**
 * The canvas as the model reads it: the alpha channel summed over 10x10 blocks (the graph
 * averages the same blocks), Uint16Array(784). Kept instead of the 313,600 canvas bytes: it is all
 * the model ever sees of a drawing.
 */
function poolCanvas(rgba) {
  const pooled = new Uint16Array(28 * 28);
  for (let y = 0; y < SIZE; ++y) {
    const row = Math.floor(y / 10) * 28;
    for (let x = 0; x < SIZE; ++x) pooled[row + Math.floor(x / 10)] += rgba[4 * (y * SIZE + x) + 3];
  }
  return pooled;
}

function showLearnStatus(note = '') {
  const n = examples.length;
  learnStatus.dataset.count = String(n);
  learnStatus.textContent = (n === 0
    ? 'The model has not learned from any of your drawings yet: if it reads one wrong, press the digit you drew.'
    : `The model has learned from ${n} of your drawing${n === 1 ? '' : 's'}.`) + (note ? ` ${note}` : '');
}

function setTeachEnabled(on) {
  teachButtons.forEach((b) => { b.disabled = !on; });
  resetButton.disabled = !on;
  downloadButton.disabled = !on;
}

/** Gives the active runtime new model bytes, between two runs (never during one). */
function swapModel(bytes) {
  const done = queue.then(() => model.update(bytes.slice()));
  queue = done.catch(() => {});
  return done;
}

/** Re-predicts the canvas with the model as it is now, if something is drawn (next frame). */
function refreshBars() {
  if (!inked) return;
  ++drawn;
  requestPrediction();
}

/**
 * The same, but at once when no prediction is queued or running (the usual case after a
 * correction): waiting for the next animation frame would add up to 17 ms to every correction.
 */
async function refreshBarsNow() {
  if (!inked) return;
  if (frameQueued || predicting) {
    refreshBars();
    await new Promise((resolve) => {
      const check = () => (shown === drawn && !frameQueued && !predicting ? resolve() : requestAnimationFrame(check));
      check();
    });
    return;
  }
  const version = ++drawn;
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
    if (clears === clearsBefore) shown = version; // reported by the caller; do not retry forever
    throw err;
  } finally {
    predicting = false;
    if (shown !== drawn) requestPrediction(); // strokes drawn meanwhile
  }
}

async function persist(current) {
  try {
    await saveState({ base, model: current, examples, updated: Date.now() });
  } catch (err) {
    showLearnStatus('(Could not save it in this browser: it lasts until you reload.)');
    console.warn('could not save the teaching:', err);
  }
}

/** "That was a K": learn the drawing on the canvas with label K, then show the new bars. */
function teach(label) {
  if (!inked) {
    showLearnStatus('Draw a digit first, then press what it was.');
    return Promise.resolve(null);
  }
  const t0 = performance.now();
  const pooled = poolCanvas(ctx.getImageData(0, 0, SIZE, SIZE).data);
  ++teaching;
  teachSection.classList.add('learning');
  const job = teachQueue.then(async () => {
    examples.push({ pooled, label });
    const tStart = performance.now();
    let result;
    try {
      result = await callWorker('learn', { examples });
    } catch (err) {
      examples.pop();
      throw err;
    }
    const tLearned = performance.now();
    await swapModel(result.bytes);
    const tSwapped = performance.now();
    await refreshBarsNow();
    const tBars = performance.now();
    lastCorrection = {
      label,
      examples: examples.length,
      learnMs: result.ms,                // nanotorch-wasm's learn + exportOnnx, in the worker
      workerMs: tLearned - tStart,       // the same plus the round trip to the worker
      updateMs: tSwapped - tLearned,     // the active runtime taking the new model
      barsMs: tBars - tSwapped,          // one prediction with the new model
      totalMs: tBars - tStart,           // learn + update bars
      sinceClickMs: tBars - t0,          // including waiting for earlier corrections
      loss: result.loss,
      firstLoss: result.firstLoss,
    };
    statusLearn.textContent = `${lastCorrection.totalMs.toFixed(0)} ms (learning ${result.ms.toFixed(0)} ms)`;
    showLearnStatus();
    await persist(result.bytes);
    return lastCorrection;
  });
  teachQueue = job.catch((err) => showError('Learning failed', err)).finally(() => {
    if (--teaching === 0) teachSection.classList.remove('learning');
    notifySettled();
  });
  return job;
}

async function resetModel() {
  ++teaching;
  const job = teachQueue.then(async () => {
    examples = [];
    await callWorker('load', { model: shipped.slice() });
    await swapModel(shipped);
    await clearState();
    lastCorrection = null;
    statusLearn.textContent = '—';
    showLearnStatus('Back to the shipped model.');
    refreshBars();
  });
  teachQueue = job.catch((err) => showError('Reset failed', err)).finally(() => {
    --teaching;
    notifySettled();
  });
  return job;
}

async function downloadModel() {
  const bytes = await callWorker('export');
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = examples.length ? 'mnist-finetuned.onnx' : 'mnist.onnx';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

teachButtons.forEach((button, k) => button.addEventListener('click', () => { teach(k).catch(() => {}); }));
resetButton.addEventListener('click', () => { resetModel().catch(() => {}); });
downloadButton.addEventListener('click', () => downloadModel().catch((err) => showError('Download failed', err)));

/** Starts the learner: nanotorch-wasm in the worker, with the current model and the replay set. */
async function startLearner() {
  const state = await startup;
  shipped = state.shipped;
  base = state.base;
  examples = state.examples;
  const replay = await fetchReplay();
  const replayDigits = replay.labels.length; // read before the buffers move to the worker
  startWorker();
  await callWorker('init', {
    wasmUrl: new URL(NANOTORCH_WASM_URL, document.baseURI).href,
    current: state.current.slice(),
    replay,
  }, [replay.images.buffer, replay.labels.buffer]);
  showLearnStatus();
  return { examples: examples.length, replayDigits };
}

const teachReady = startLearner();
teachReady.catch(async (err) => {
  learnStatus.textContent = 'Teaching is unavailable: the learner could not be loaded.';
  // Without the model there is nothing to teach, and loading the model reports that already.
  if (await startup.then(() => true, () => false)) showError('Could not load the learner', err);
});

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
// Teaching needs both: the learner, and a runtime to take the learned model.
Promise.all([ready, teachReady]).then(() => setTeachEnabled(true), () => {});

window.nanotorch = {
  /** Resolves with { runtime, version, backend, modelLoaded, firstPrediction } once usable. */
  ready,
  /** Resolves with { examples, replayDigits } once the teaching buttons work. */
  teachReady,
  /** Resolves once the bars show the prediction for the canvas as it is now, and no correction is in flight. */
  settled: () => (isSettled() ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
  /** Accuracy in [0, 1] of the current (maybe fine-tuned) model on 28x28 MNIST digits, by nanotorch-wasm. */
  evaluate: (images, labels) => teachReady.then(() => callWorker('evaluate', { images, labels })),
  /** The learner's (nanotorch-wasm in the worker) probabilities for the canvas as it is now. */
  predictLearner: () => teachReady.then(() => callWorker('predict', { rgba: ctx.getImageData(0, 0, SIZE, SIZE).data })),
  /** Timings of the last correction (ms): learnMs, workerMs, updateMs, barsMs, totalMs. */
  get lastCorrection() { return lastCorrection; },
  /** How many drawings the model has learned from. */
  get learned() { return examples.length; },
};
window.nanotorchBench = bench;
