// tests/js/browser_lib.mjs — what the browser tests (e2e_browser.mjs, bench_browser.mjs) share:
// staging the demo page with its runtimes and a model in a temp dir, a static server for it on
// 127.0.0.1, Debian's Chromium driven by playwright-core, MNIST test digits, and turning a 28x28
// digit into pen strokes that a real mouse can draw.
//
// It never downloads a browser (playwright-core has no download step; the executable is
// /usr/bin/chromium, or $CHROMIUM) and never serves the repo's examples/web directly: the tests
// must not depend on, or disturb, what scripts/serve.sh last copied there.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB = join(ROOT, 'examples/web');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** The page's own files (the rest of the staged site comes from vendor.txt, the model, nanotorch-wasm and MNIST). */
const PAGE_FILES = ['index.html', 'style.css', 'app.js', 'teach-worker.js', 'nanotorch.js', 'package.json'];
/** nanotorch-wasm as scripts/build_wasm.sh --web builds it ($NANOTORCH_WASM for another). */
export const WASM = process.env.NANOTORCH_WASM ?? join(ROOT, 'build/wasm/web/nanotorch_wasm.wasm');
/** How many MNIST training digits the staged page gets as its teaching replay set (as serve.sh). */
export const REPLAY_DIGITS = 5000;

/** Runtime configurations the tests visit: the page's default and ONNX.js on both backends. */
export const RUNTIMES = [
  { id: 'ort', label: 'onnxruntime-web (wasm)', query: '' },
  { id: 'onnxjs', label: 'ONNX.js (wasm)', query: '?runtime=onnxjs' },
  { id: 'onnxjs-cpu', label: 'ONNX.js (cpu)', query: '?runtime=onnxjs&backend=cpu' },
  { id: 'nanotorch', label: 'nanotorch-wasm', query: '?runtime=nanotorch' },
];

/** Picks RUNTIMES by a comma-separated list of ids ("ort,onnxjs"); throws on an unknown id. */
export function selectRuntimes(list) {
  return list.split(',').filter(Boolean).map((id) => {
    const rt = RUNTIMES.find((r) => r.id === id);
    if (!rt) throw new Error(`unknown runtime "${id}" (known: ${RUNTIMES.map((r) => r.id).join(', ')})`);
    return rt;
  });
}

// ---- arguments ----

/**
 * Parses "MODEL.onnx [--flag value]..." against `defaults` (flag names without dashes); numbers
 * in defaults make the flag numeric. Throws a usage error naming the flag.
 */
export function parseArgs(argv, defaults) {
  const opts = { ...defaults, positional: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      opts.positional.push(a);
      continue;
    }
    const key = a.slice(2);
    if (key === 'help') return { ...opts, help: true };
    if (!(key in defaults)) throw new Error(`unknown option ${a}`);
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
    const value = argv[++i];
    if (typeof defaults[key] === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a}: "${value}" is not a non-negative number`);
      opts[key] = n;
    } else {
      opts[key] = value;
    }
  }
  return opts;
}

// ---- site ----

/** Reads examples/web/vendor.txt: [{ src (under node_modules/), dest (under the site) }]. */
export function vendorFiles() {
  return readFileSync(join(WEB, 'vendor.txt'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [src, dest] = line.split(/\s+/);
      return { src, dest };
    });
}

/**
 * Copies the page, its runtimes, `modelPath`, nanotorch-wasm and the teaching replay set (the
 * first REPLAY_DIGITS training digits of MNIST in `dataDir`, cut as scripts/serve.sh cuts them)
 * into a new temp dir; returns the dir.
 */
export function stageSite(modelPath, dataDir = join(ROOT, 'data/mnist')) {
  if (!existsSync(modelPath)) {
    throw new Error(`no model at ${modelPath} — train and export one with: bash scripts/run.sh (writes out/onnx_model.onnx)`);
  }
  if (!existsSync(WASM)) throw new Error(`no nanotorch-wasm at ${WASM} — build it with: bash scripts/build_wasm.sh --web`);
  const images = readIdx(join(dataDir, 'train-images-idx3-ubyte'), 3);
  const labels = readIdx(join(dataDir, 'train-labels-idx1-ubyte'), 1);
  const dir = mkdtempSync(join(tmpdir(), 'nanotorch-web-'));
  for (const f of PAGE_FILES) copyFileSync(join(WEB, f), join(dir, f));
  for (const { src, dest } of vendorFiles()) {
    const from = join(ROOT, 'node_modules', src);
    if (!existsSync(from)) {
      throw new Error(`node_modules/${src} is missing — install the JavaScript packages with: ONNXRUNTIME_NODE_INSTALL=skip npm ci`);
    }
    mkdirSync(dirname(join(dir, dest)), { recursive: true });
    copyFileSync(from, join(dir, dest));
  }
  copyFileSync(modelPath, join(dir, 'onnx_model.onnx'));
  copyFileSync(WASM, join(dir, 'nanotorch_wasm.wasm'));
  writeFileSync(join(dir, 'replay-images-idx3-ubyte'), idxBytes([REPLAY_DIGITS, 28, 28], images.data.subarray(0, REPLAY_DIGITS * 784)));
  writeFileSync(join(dir, 'replay-labels-idx1-ubyte'), idxBytes([REPLAY_DIGITS], labels.data.subarray(0, REPLAY_DIGITS)));
  return dir;
}

/** An IDX file of unsigned bytes: magic, the big-endian sizes, the data. */
function idxBytes(shape, data) {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt32BE(0x800 + shape.length, 0);
  shape.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/**
 * Serves `dir` on 127.0.0.1 on a free port. Returns { origin, missing, hold(path), close() }:
 * paths in the `missing` set answer 404 (how does the page report a model that is not there?),
 * and hold(path) delays that path's responses until the function it returns is called (what does
 * the page show while the model is still loading?). no-store, so every page load really fetches
 * what it times.
 */
export async function serveDir(dir) {
  const missing = new Set();
  const held = new Map(); // path -> promise that resolves when released
  const root = resolve(dir);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (held.has(path)) await held.get(path);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (!file.startsWith(root + sep) || missing.has(path) || !existsSync(file)) return send(404, `not found: ${path}\n`);
    try {
      send(200, readFileSync(file), MIME[extname(file)] ?? 'application/octet-stream');
    } catch (e) {
      send(500, `${e.message}\n`);
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    missing,
    hold(path) {
      let release;
      held.set(path, new Promise((ok) => { release = ok; }));
      return () => {
        held.delete(path);
        release();
      };
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}

// ---- browser ----

/**
 * Starts headless Chromium with a fresh user-data dir; returns { context, version, close() }.
 * --disable-background-networking and --disable-component-update: no traffic beyond our server.
 */
export async function launchChromium({ viewport = { width: 480, height: 760 } } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found — install Debian's Chromium: apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)`);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (${e.message}) — install the JavaScript packages with: ONNXRUNTIME_NODE_INSTALL=skip npm ci`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'nanotorch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    deviceScaleFactor: 1,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const version = context.browser()?.version() ?? chromiumVersion();
  return {
    context,
    version,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** "Chromium 1xx..." from the executable (a persistent context has no browser() to ask). */
function chromiumVersion() {
  const out = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  return (out.stdout ?? '').trim().split('\n').pop() || 'unknown version';
}

/** Where canvas pixel (0, 0) is on the page and how many page pixels one canvas pixel spans. */
export async function canvasGeometry(page) {
  return page.$eval('#canvas', (c) => {
    const r = c.getBoundingClientRect();
    return { left: r.left + c.clientLeft, top: r.top + c.clientTop, scale: c.clientWidth / c.width };
  });
}

// ---- MNIST ----

/** Reads an IDX file and checks its header: magic (type 0x08 = ubyte, `dims` dimensions), sizes. */
function readIdx(path, dims) {
  if (!existsSync(path)) throw new Error(`${path} not found — fetch MNIST with: bash scripts/fetch_mnist.sh data/mnist`);
  const buf = readFileSync(path);
  const header = 4 + 4 * dims;
  if (buf.length < header) throw new Error(`${path}: ${buf.length} bytes, shorter than the ${header}-byte IDX header`);
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x800 + dims) throw new Error(`${path}: magic 0x${magic.toString(16)} at offset 0, expected 0x${(0x800 + dims).toString(16)}`);
  const shape = Array.from({ length: dims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  if (buf.length !== header + size) throw new Error(`${path}: ${buf.length} bytes, the header's shape [${shape}] needs ${header + size}`);
  return { shape, data: buf.subarray(header) };
}

/** The first `count` MNIST test digits: { images: Uint8Array(784)[], labels: number[] }. */
export function readMnistTest(dataDir, count) {
  const images = readIdx(join(dataDir, 't10k-images-idx3-ubyte'), 3);
  const labels = readIdx(join(dataDir, 't10k-labels-idx1-ubyte'), 1);
  const [n, rows, cols] = images.shape;
  if (rows !== 28 || cols !== 28) throw new Error(`MNIST images are ${rows}x${cols}, expected 28x28`);
  if (labels.shape[0] !== n) throw new Error(`${n} images but ${labels.shape[0]} labels`);
  if (count > n) throw new Error(`asked for ${count} digits, the test set has ${n}`);
  return {
    images: Array.from({ length: count }, (_, i) => images.data.subarray(784 * i, 784 * (i + 1))),
    labels: Array.from(labels.data.subarray(0, count)),
  };
}

// ---- strokes ----
// A person draws a digit as a few pen strokes along its centre line, so the test does the same:
// threshold the 28x28 image, thin it to a one-pixel skeleton (Zhang-Suen), and walk the
// skeleton's 8-connected pixel graph into polylines. The page's pen then gives every stroke the
// same width, as it does for a human, instead of painting MNIST's own stroke outlines.

const NEIGHBOURS = [[-1, 0], [-1, 1], [0, 1], [1, 1], [1, 0], [1, -1], [0, -1], [-1, -1]]; // P2..P9, clockwise from north

/** Zhang-Suen thinning of a binary 28x28 image (1 = ink), in place; returns it. */
function thin(img, w, h) {
  const at = (y, x) => (y >= 0 && y < h && x >= 0 && x < w ? img[y * w + x] : 0);
  for (let changed = true; changed;) {
    changed = false;
    for (const pass of [0, 1]) {
      const remove = [];
      for (let y = 0; y < h; ++y) {
        for (let x = 0; x < w; ++x) {
          if (!img[y * w + x]) continue;
          const p = NEIGHBOURS.map(([dy, dx]) => at(y + dy, x + dx));
          const b = p.reduce((a, v) => a + v, 0);
          let a = 0; // 0 -> 1 transitions around the ring
          for (let k = 0; k < 8; ++k) a += !p[k] && p[(k + 1) % 8];
          const [p2, , p4, , p6, , p8] = p;
          const ok = pass === 0 ? !(p2 && p4 && p6) && !(p4 && p6 && p8) : !(p2 && p4 && p8) && !(p2 && p6 && p8);
          if (b >= 2 && b <= 6 && a === 1 && ok) remove.push(y * w + x);
        }
      }
      for (const i of remove) img[i] = 0;
      changed ||= remove.length > 0;
    }
  }
  return img;
}

/**
 * Ramer-Douglas-Peucker: drops the points of `line` within `eps` of the chord between kept ones.
 * The skeleton is a staircase of unit steps; a hand draws the straight line through it, and
 * fewer points mean fewer mouse events (each one is a round trip to the browser).
 */
function simplify(line, eps) {
  if (line.length < 3) return line;
  const [ax, ay] = line[0];
  const [bx, by] = line[line.length - 1];
  const len = Math.hypot(bx - ax, by - ay);
  let far = 0, farIndex = 0;
  for (let i = 1; i < line.length - 1; ++i) {
    const [px, py] = line[i];
    const d = len > 0 ? Math.abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / len : Math.hypot(px - ax, py - ay);
    if (d > far) [far, farIndex] = [d, i];
  }
  if (far <= eps) return [line[0], line[line.length - 1]];
  return [...simplify(line.slice(0, farIndex + 1), eps).slice(0, -1), ...simplify(line.slice(farIndex), eps)];
}

/**
 * Pen strokes for a 28x28 MNIST digit: an array of polylines, each [[x, y], ...] in 28x28 pixel
 * coordinates (pixel centres), simplified to within `eps` pixels. A stroke of one point is a dot.
 */
export function digitStrokes(pixels, { threshold = 128, eps = 0.75 } = {}) {
  const w = 28, h = 28;
  const img = thin(Uint8Array.from(pixels, (v) => (v >= threshold ? 1 : 0)), w, h);
  const on = (y, x) => y >= 0 && y < h && x >= 0 && x < w && img[y * w + x] === 1;
  // m-adjacency: a diagonal step counts only where no orthogonal pair of steps joins the same two
  // pixels, or every staircase corner would add a redundant two-pixel stroke.
  const nbrs = (i) => {
    const y = Math.floor(i / w), x = i % w;
    return NEIGHBOURS.filter(([dy, dx]) => on(y + dy, x + dx) && !(dy && dx && (on(y + dy, x) || on(y, x + dx))))
      .map(([dy, dx]) => (y + dy) * w + x + dx);
  };
  const used = new Set(); // undirected edges "a-b" with a < b
  const key = (a, b) => (a < b ? `${a}-${b}` : `${b}-${a}`);
  const free = (i) => nbrs(i).filter((j) => !used.has(key(i, j)));
  const point = (i) => [i % w, Math.floor(i / w)];

  const strokes = [];
  const nodes = [];
  for (let i = 0; i < w * h; ++i) if (img[i]) nodes.push(i);
  // Start at ends (one free edge) first, so lines are drawn end to end rather than from the middle.
  for (;;) {
    const starts = nodes.filter((i) => free(i).length > 0);
    if (starts.length === 0) break;
    let cur = starts.find((i) => free(i).length === 1) ?? starts[0];
    const line = [point(cur)];
    let dir = null;
    for (let next = free(cur); next.length; next = free(cur)) {
      // Keep going straight where the skeleton forks: the smallest turn from the last direction.
      const [cy, cx] = [Math.floor(cur / w), cur % w];
      const turn = (j) => {
        if (!dir) return 0;
        const [dy, dx] = [Math.floor(j / w) - cy, (j % w) - cx];
        return -(dy * dir[0] + dx * dir[1]) / Math.hypot(dy, dx);
      };
      const j = next.reduce((best, c) => (turn(c) < turn(best) ? c : best));
      used.add(key(cur, j));
      dir = [Math.floor(j / w) - cy, (j % w) - cx];
      cur = j;
      line.push(point(cur));
    }
    strokes.push(simplify(line, eps));
  }
  for (const i of nodes) if (nbrs(i).length === 0) strokes.push([point(i)]); // isolated pixels
  return strokes;
}

/**
 * Draws `strokes` (28x28 coordinates) on the page's canvas with real mouse events: move to the
 * start, press, move along the points, release. `onStroke(k)` runs after stroke k's moves, while
 * the button is still down.
 */
export async function drawStrokes(page, strokes, geometry, onStroke = async () => {}) {
  const { left, top, scale } = geometry;
  const at = ([x, y]) => [left + (x + 0.5) * 10 * scale, top + (y + 0.5) * 10 * scale];
  for (let k = 0; k < strokes.length; ++k) {
    const [x0, y0] = at(strokes[k][0]);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (const p of strokes[k].slice(1)) await page.mouse.move(...at(p));
    await onStroke(k);
    await page.mouse.up();
  }
}

/**
 * A handwriting style as a transform of pen strokes (28x28 coordinates, as digitStrokes returns
 * them): rotate by `rotate` degrees (clockwise on screen) and shear by `slant` (x += slant * (13.5 - y),
 * so a positive slant leans the top to the right), both about the image centre (13.5, 13.5).
 * Points are clamped to the 28x28 box so the pen stays on the canvas.
 */
export function styleStrokes(strokes, { rotate = 0, slant = 0 } = {}) {
  const c = 13.5;
  const a = (rotate * Math.PI) / 180;
  const [cos, sin] = [Math.cos(a), Math.sin(a)];
  const clamp = (v) => Math.min(27.4, Math.max(-0.4, v));
  return strokes.map((line) => line.map(([x, y]) => {
    const sx = x - c + slant * (c - y);
    const sy = y - c;
    return [clamp(c + cos * sx - sin * sy), clamp(c + sin * sx + cos * sy)];
  }));
}
