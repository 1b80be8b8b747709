// tests/js/bench_browser.mjs — how fast the draw-a-digit page is in a real browser (Debian's
// Chromium, headless, via playwright-core), per runtime.
//
//   node tests/js/bench_browser.mjs MODEL.onnx [--runs 200] [--loads 5] [--data data/mnist]
//        [--runtimes ort,onnxjs,onnxjs-cpu,nanotorch]
//
// For each runtime:
//   model ready       ms from navigation start until the session is created (runtime script and
//                     wasm fetched and compiled, model fetched and parsed), median of --loads
//                     fresh page loads;
//   first prediction  ms from navigation start until the page's first inference has returned
//                     (its warm-up run on the blank canvas: from then on a stroke gets its bars
//                     after one "per run" time), median of the same loads;
//   per run           median (and p10 / p90) over --runs inferences of window.nanotorchBench on a
//                     drawn MNIST digit: the session's run alone, and with reading the canvas
//                     (getImageData + float32 conversion), which is what each stroke frame costs.
// Then, once: nanotorch-wasm training the seed's Net in the page (nt.learn on MNIST digits at
// batch 64), ms per SGD step.
// Everything is served from 127.0.0.1 with Cache-Control: no-store, so each load fetches again
// (over loopback: the numbers leave out the network, not the parsing and compiling).
// The numbers are for this machine and its load; compare runtimes within one run of the script.
import { join } from 'node:path';
import { rmSync } from 'node:fs';

import {
  ROOT, canvasGeometry, digitStrokes, drawStrokes, launchChromium, parseArgs, readMnistTest,
  selectRuntimes, serveDir, stageSite,
} from './browser_lib.mjs';

const USAGE = 'usage: node tests/js/bench_browser.mjs MODEL.onnx [--runs N] [--loads N] [--data DIR] [--runtimes ort,onnxjs,onnxjs-cpu,nanotorch]';

function quantile(values, q) {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}
const median = (values) => quantile(values, 0.5);

async function benchRuntime(ctx, server, rt, digit, opts) {
  // ---- load times: fresh pages ----
  const ready = [];
  const first = [];
  for (let i = 0; i < opts.loads; ++i) {
    const page = await ctx.newPage();
    await page.goto(`${server.origin}/${rt.query}`);
    const t = await page.evaluate(() => window.nanotorch.ready);
    ready.push(t.modelLoaded);
    first.push(t.firstPrediction);
    await page.close();
  }

  // ---- per-run times on a drawn digit ----
  const page = await ctx.newPage();
  await page.goto(`${server.origin}/${rt.query}`);
  const info = await page.evaluate(() => window.nanotorch.ready);
  await drawStrokes(page, digitStrokes(digit), await canvasGeometry(page));
  await page.evaluate(() => window.nanotorch.settled());
  await page.evaluate(() => window.nanotorchBench(10)); // warm-up, not counted
  const { times, totals } = await page.evaluate((n) => window.nanotorchBench(n), opts.runs);
  await page.close();
  return {
    name: [rt.label.replace(/ \(.*\)$/, ''), info.version, `(${info.backend})`].filter(Boolean).join(' '),
    ready: median(ready),
    first: median(first),
    run: median(times),
    p10: quantile(times, 0.1),
    p90: quantile(times, 0.9),
    total: median(totals),
  };
}

/**
 * nanotorch-wasm training the seed's Net in the page, at batch 64 on the replay set's MNIST
 * digits (nt.learn without drawings: SGD lr 0.01 momentum 0.5, dropout on): ms per step, median
 * of `calls` calls of `steps` steps each, after one warm-up call. Runs on the page's main thread.
 */
async function benchTraining(ctx, server, { calls = 5, steps = 10 } = {}) {
  const page = await ctx.newPage();
  await page.goto(`${server.origin}/`);
  await page.evaluate(() => window.nanotorch.ready);
  const perStep = await page.evaluate(async ({ calls, steps }) => {
    const { loadNanotorch } = await import('./nanotorch.js');
    const nt = await loadNanotorch('nanotorch_wasm.wasm');
    const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
    nt.loadModel(await bytes('onnx_model.onnx'));
    const images = (await bytes('replay-images-idx3-ubyte')).subarray(16);
    const labels = (await bytes('replay-labels-idx1-ubyte')).subarray(8);
    const replay = { images, labels };
    nt.learn([], replay, { steps: 2, batch: 64 });
    const times = [];
    for (let c = 0; c < calls; ++c) {
      const t0 = performance.now();
      nt.learn([], replay, { steps, batch: 64, seed: c + 1 });
      times.push((performance.now() - t0) / steps);
    }
    return times;
  }, { calls, steps });
  await page.close();
  return { median: median(perStep), min: Math.min(...perStep), max: Math.max(...perStep) };
}

async function main(argv) {
  const opts = parseArgs(argv, { runs: 200, loads: 5, data: join(ROOT, 'data/mnist'), runtimes: 'ort,onnxjs,onnxjs-cpu,nanotorch' });
  if (opts.help || opts.positional.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  if (opts.runs < 100) throw new Error(`--runs ${opts.runs}: at least 100 runs for a median`);
  if (opts.loads < 1) throw new Error('--loads must be at least 1');
  const runtimes = selectRuntimes(opts.runtimes);
  const digit = readMnistTest(opts.data, 1).images[0];

  const site = stageSite(opts.positional[0], opts.data);
  const server = await serveDir(site);
  const browser = await launchChromium();
  const rows = [];
  let training = null;
  try {
    for (const rt of runtimes) rows.push(await benchRuntime(browser.context, server, rt, digit, opts));
    training = await benchTraining(browser.context, server);
  } finally {
    await browser.close();
    await server.close();
    rmSync(site, { recursive: true, force: true });
  }

  console.log(`Chromium ${browser.version} (headless); ${opts.loads} page loads and ${opts.runs} runs per runtime; times in ms`);
  const header = ['runtime', 'model ready', 'first prediction', 'per run (median)', 'p10', 'p90', 'with canvas read'];
  const table = [header, ...rows.map((r) => [r.name, r.ready, r.first, r.run, r.p10, r.p90, r.total]
    .map((v) => (typeof v === 'number' ? v.toFixed(v < 10 ? 2 : 0) : v)))];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const line = (row) => `| ${row.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join(' | ')} |`;
  console.log(line(table[0]));
  console.log(`|${widths.map((w, c) => (c === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of table.slice(1)) console.log(line(row));
  const ort = rows[runtimes.findIndex((r) => r.id === 'ort')];
  const nt = rows[runtimes.findIndex((r) => r.id === 'nanotorch')];
  if (ort && nt) {
    console.log(`nanotorch-wasm / onnxruntime-web per run (median): ${(nt.run / ort.run).toFixed(2)}x ` +
      `(${nt.run.toFixed(2)} ms vs ${ort.run.toFixed(2)} ms, same browser run)`);
  }
  console.log(`nanotorch-wasm training step (seed Net, batch 64, SGD, dropout on): median ${training.median.toFixed(1)} ms ` +
    `(min ${training.min.toFixed(1)}, max ${training.max.toFixed(1)}; 5 calls of 10 steps)`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`bench_browser.mjs: ${(process.env.DEBUG ? e?.stack : e?.message) ?? e}`);
    process.exitCode = 1;
  },
);
