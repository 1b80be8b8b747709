// examples/web/nanotorch.js — nanotorch compiled to WebAssembly, for the page and its Web Worker
// (a plain ES module: no bundler, no Emscripten glue). It instantiates nanotorch_wasm.wasm (built
// by scripts/build_wasm.sh from examples/wasm/nanotorch_wasm.cpp), supplies the handful of WASI
// imports that standalone build needs, and wraps the C ABI:
//
//   const nt = await loadNanotorch('nanotorch_wasm.wasm');   // URL, or the bytes, or a WebAssembly.Module
//   nt.loadModel(onnxBytes)            -> handle (a number); the canvas model: 313600 RGBA bytes -> 10 probabilities
//   nt.predict(rgba)                   -> Float32Array(10)
//   nt.learn(examples, replay, opts)   -> {loss, firstLoss}   (fine-tunes with SGD; see learn below)
//   nt.evaluate(images, labels)        -> accuracy in [0, 1] on 28x28 uint8 MNIST digits
//   nt.exportOnnx()                    -> Uint8Array, the current model as ONNX (opset 9, ONNX.js profile)
//   nt.reset()                         restores the weights loadModel loaded
//
// Errors: a failing call throws a NanotorchError (an Error) whose message is nanotorch's own
// (e.g. "loadModel: parse_error at byte 12 ..."), with .status (the C ABI status) and .kind
// (shape_error, value_error, io_error, parse_error, unsupported_error, autograd_error, error,
// std_exception, unknown). A trap inside wasm surfaces as the WebAssembly.RuntimeError it is.

export const CANVAS_BYTES = 280 * 280 * 4;
export const DIGIT_PIXELS = 28 * 28;

const KINDS = ['ok', 'shape_error', 'value_error', 'io_error', 'parse_error', 'unsupported_error', 'autograd_error',
  'error', 'std_exception', 'unknown'];

/** An error reported by nanotorch inside wasm. */
export class NanotorchError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'NanotorchError';
    this.status = status;
    this.kind = KINDS[status] || 'unknown';
  }
}

const isNode = typeof process === 'object' && process.versions != null && process.versions.node != null;

async function wasmSource(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm instanceof ArrayBuffer || ArrayBuffer.isView(wasm)) return wasm;
  const url = String(wasm);
  if (isNode && !/^https?:/.test(url)) {  // node: a path or file: URL, read from disk
    const fs = await import('node:fs/promises');
    return fs.readFile(url.startsWith('file:') ? new URL(url) : url);
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`nanotorch: cannot fetch ${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

/**
 * Loads nanotorch-wasm. `wasm`: the URL (or, in node, the path) of nanotorch_wasm.wasm, its bytes
 * (ArrayBuffer / typed array) or a compiled WebAssembly.Module.
 */
export async function loadNanotorch(wasm) {
  let memory = null;
  const u8 = () => new Uint8Array(memory.buffer);  // fresh views: memory may have grown
  const dv = () => new DataView(memory.buffer);
  const decoder = new TextDecoder();
  const lines = ['', '', ''];
  // The WASI subset the standalone build imports: console output, an empty environment, no files.
  const wasi = {
    fd_write(fd, iovs, iovsLen, nwritten) {
      let n = 0;
      const view = dv();
      for (let i = 0; i < iovsLen; ++i) {
        const ptr = view.getUint32(iovs + 8 * i, true), len = view.getUint32(iovs + 8 * i + 4, true);
        const text = decoder.decode(u8().slice(ptr, ptr + len));
        n += len;
        if (fd === 1 || fd === 2) {
          const parts = (lines[fd] + text).split('\n');
          lines[fd] = parts.pop();
          for (const line of parts) (fd === 1 ? console.log : console.warn)(`nanotorch: ${line}`);
        }
      }
      view.setUint32(nwritten, n, true);
      return fd === 1 || fd === 2 ? 0 : 8;  // EBADF for anything but stdout/stderr
    },
    fd_read: () => 8,
    fd_seek: () => 8,
    fd_close: () => 8,
    environ_sizes_get(countPtr, sizePtr) {
      dv().setUint32(countPtr, 0, true);
      dv().setUint32(sizePtr, 0, true);
      return 0;
    },
    environ_get: () => 0,
    proc_exit(code) {
      throw new Error(`nanotorch: wasm called exit(${code})`);
    },
  };
  const imports = { wasi_snapshot_preview1: wasi, env: { emscripten_notify_memory_growth() {} } };
  const source = await wasmSource(wasm);
  const instance = source instanceof WebAssembly.Module
    ? await WebAssembly.instantiate(source, imports)
    : (await WebAssembly.instantiate(source, imports)).instance;
  const x = instance.exports;
  memory = x.memory;
  x._initialize();  // static constructors (a reactor module has no main)

  const lastError = () => {
    const p = x.nt_last_error();
    const bytes = u8();
    let end = p;
    while (bytes[end] !== 0) ++end;
    return decoder.decode(bytes.slice(p, end));
  };
  const check = (status) => {
    if (status !== 0) throw new NanotorchError(lastError(), status);
  };
  const alloc = (bytes) => {
    const p = x.nt_alloc(bytes);
    if (p === 0) throw new NanotorchError(`out of memory allocating ${bytes} bytes`, 8);
    return p;
  };
  // Copies `data` (a typed array / array of bytes) into a fresh wasm buffer.
  const copyIn = (data) => {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer ? data.buffer : data,
      data.byteOffset || 0, data.byteLength !== undefined ? data.byteLength : data.length);
    const p = alloc(bytes.length);
    u8().set(bytes, p);
    return p;
  };
  // Runs fn(scratch) with `bytes` of scratch memory, freeing it afterwards.
  const withScratch = (bytes, fn) => {
    const p = alloc(bytes);
    try {
      return fn(p);
    } finally {
      x.nt_free(p);
    }
  };
  const asBytes = (data, what) => {
    if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (Array.isArray(data)) return Uint8Array.from(data);
    throw new TypeError(`nanotorch: ${what} must be a Uint8Array (got ${Object.prototype.toString.call(data)})`);
  };

  // predict() is called once per animation frame: its buffers are allocated once.
  let predictIn = 0, predictOut = 0;
  let handles = 0;

  const nt = {
    /** The instance's exports, for the curious (and benchmarks). */
    exports: x,

    /** Loads the canvas model from ONNX bytes; returns a handle (the number of models loaded so far). */
    loadModel(onnxBytes) {
      const bytes = asBytes(onnxBytes, 'loadModel: onnxBytes');
      const p = copyIn(bytes);
      try {
        check(x.nt_load_model(p, bytes.length));
      } finally {
        x.nt_free(p);
      }
      return ++handles;
    },

    /** Probabilities for one canvas (280*280*4 RGBA bytes, as getImageData returns them). */
    predict(rgba) {
      const bytes = asBytes(rgba, 'predict: rgba');
      if (bytes.length !== CANVAS_BYTES) {
        throw new NanotorchError(`predict: expected ${CANVAS_BYTES} RGBA bytes (a 280x280 canvas), got ${bytes.length}`, 1);
      }
      if (!predictIn) {
        predictIn = alloc(CANVAS_BYTES);
        predictOut = alloc(40);
      }
      u8().set(bytes, predictIn);
      check(x.nt_predict(predictIn, bytes.length, predictOut));
      return new Float32Array(memory.buffer.slice(predictOut, predictOut + 40));
    },

    /**
     * Fine-tunes the model on the user's drawings mixed with replayed MNIST digits.
     * examples: [{rgba: 313600 bytes, label: 0..9}]; replay: {images: n*784 uint8, labels: n uint8}
     * (or null); opts: {steps = 10, lr = 0.01, momentum = 0.5, batch = 64, seed = 1}. Each SGD step
     * takes min(#examples, ceil(batch/2)) drawings in turn and fills the batch with random replay
     * digits; dropout is on, as in training. Returns {loss, firstLoss}: the last and first step's loss.
     */
    learn(examples, replay, opts = {}) {
      const { steps = 10, lr = 0.01, momentum = 0.5, batch = 64, seed = 1 } = opts;
      if (!Array.isArray(examples)) throw new TypeError('nanotorch: learn: examples must be an array');
      const nUser = examples.length;
      const userBytes = new Uint8Array(nUser * CANVAS_BYTES);
      const userLabels = new Uint8Array(nUser);
      examples.forEach((e, i) => {
        const bytes = asBytes(e && e.rgba, `learn: examples[${i}].rgba`);
        if (bytes.length !== CANVAS_BYTES) {
          throw new NanotorchError(`learn: examples[${i}].rgba has ${bytes.length} bytes, not ${CANVAS_BYTES}`, 1);
        }
        if (!Number.isInteger(e.label) || e.label < 0 || e.label > 9) {
          throw new NanotorchError(`learn: examples[${i}].label = ${e.label} is not a digit 0..9`, 2);
        }
        userBytes.set(bytes, i * CANVAS_BYTES);
        userLabels[i] = e.label;
      });
      const images = replay ? asBytes(replay.images, 'learn: replay.images') : new Uint8Array(0);
      const labels = replay ? asBytes(replay.labels, 'learn: replay.labels') : new Uint8Array(0);
      if (images.length !== labels.length * DIGIT_PIXELS) {
        throw new NanotorchError(`learn: replay has ${labels.length} labels but ${images.length} image bytes ` +
          `(expected ${labels.length * DIGIT_PIXELS})`, 1);
      }
      const ptrs = [copyIn(userBytes), copyIn(userLabels), copyIn(images), copyIn(labels)];
      try {
        return withScratch(8, (out) => {
          check(x.nt_learn(ptrs[0], ptrs[1], nUser, ptrs[2], ptrs[3], labels.length, steps, lr, momentum, batch,
            seed >>> 0, out, out + 4));
          const f = new Float32Array(memory.buffer.slice(out, out + 8));
          return { loss: f[1], firstLoss: f[0] };
        });
      } finally {
        ptrs.forEach((p) => x.nt_free(p));
      }
    },

    /** Fraction of the 28x28 uint8 digits (n*784 bytes, n labels) the model reads right. */
    evaluate(images, labels) {
      const img = asBytes(images, 'evaluate: images'), lab = asBytes(labels, 'evaluate: labels');
      if (img.length !== lab.length * DIGIT_PIXELS) {
        throw new NanotorchError(`evaluate: ${lab.length} labels but ${img.length} image bytes ` +
          `(expected ${lab.length * DIGIT_PIXELS})`, 1);
      }
      const pi = copyIn(img), pl = copyIn(lab);
      try {
        return withScratch(4, (out) => {
          check(x.nt_evaluate(pi, pl, lab.length, out));
          return new Float32Array(memory.buffer.slice(out, out + 4))[0];
        });
      } finally {
        x.nt_free(pi);
        x.nt_free(pl);
      }
    },

    /** The current model as ONNX bytes (opset 9, the ONNX.js-compatible profile), a fresh copy. */
    exportOnnx() {
      return withScratch(8, (out) => {
        check(x.nt_export_onnx(out, out + 4));
        const view = dv();
        const ptr = view.getUint32(out, true), size = view.getUint32(out + 4, true);
        return u8().slice(ptr, ptr + size);
      });
    },

    /** Restores the weights loadModel loaded. */
    reset() {
      check(x.nt_reset());
    },
  };
  return nt;
}
