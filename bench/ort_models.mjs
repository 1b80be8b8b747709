// bench/ort_models.mjs — batch-1 and batch-64 latency of nanotorch's ONNX runtime (examples/onnx_run)
// against onnxruntime-node on the same .onnx files, 1 thread each, in one run (issue #13's table).
//
//   node bench/ort_models.mjs ONNX_RUN [--e2e DIR] [--export-check DIR] [--torch DIR]
//                             [--rounds R] [--block-ms MS] [--quick]
//
// ONNX_RUN is the onnx_run binary of a Release -march=native build (e.g. build/bench/examples/onnx_run).
// The models come from three directories, each optional (a missing option skips its models and says so):
//   --e2e DIR           what `bench_e2e --export-dir DIR` writes: net28.onnx (the seed's Net, opset 13,
//                       static [1, 1, 28, 28]) and canvas.onnx (InferenceNet, opset 9, [313600] RGBA),
//                       the models of issue #13's batch-1 targets, fed their input_*.f32 digits;
//   --export-check DIR  what `export_check DIR --count 64` writes: net_opset13.onnx (the seed's Net with
//                       a dynamic batch axis) fed MNIST test digits, and fashion_opset13.onnx (the
//                       Fashion-MNIST ResNet8 of examples/fashion_net.hpp, dynamic batch) fed
//                       Fashion-MNIST test images, both at batch 1 and 64;
//   --torch DIR         what tests/python/make_torch_models.py writes: torch.onnx.export's graphs of the
//                       residual net (Conv+BatchNorm, residual add, depthwise and grouped convs, global
//                       pooling) and the pooling net (ceil_mode pools, Shape/Gather/Reshape on the
//                       dynamic batch) at opset 13, fed seeded standard-normal inputs, batch 1 and 64.
// For each model and batch the input is written as a TensorProto .pb, and the outputs are checked
// first: onnx_run MODEL --input X.pb --output DIR/ --threads 1 must give every output within
// 1e-5 * max(1, max|ort|) of onnxruntime's (tests/js/onnx_run_io.mjs, the bound the interop check
// uses and explains), so a wrong answer is never timed. Then R rounds (default 9) alternate the two
// runtimes, the first to go swapping every round so that a load change hits both alike:
//   nanotorch         onnx_run MODEL --input X.pb --time N --threads 1 --quiet: a fresh process that
//                     loads the model, runs it once untimed, then N timed runs; its median
//                     (onnx_run's "time: median ..." line) is the round's figure. Loading is not timed.
//   onnxruntime-node  one InferenceSession (CPU execution provider, intraOpNumThreads 1,
//                     interOpNumThreads 1, sequential, ORT's default graph optimisations: what a user
//                     gets out of the box), warmed up once; N awaited session.run calls, each timed
//                     alone; their median is the round's figure. This includes onnxruntime-node's
//                     JS <-> native marshalling (a few us per call), as a Node user sees it.
// N is picked per model so that a block takes about --block-ms (default 400 ms). Reported: the median
// of the R round medians for each runtime, the range of the round medians, and the ratio ORT time /
// nanotorch time (> 1: nanotorch is faster). Output: one line per model and batch, a Markdown table of
// the same rows for the README, and `RESULT ort_models <model> <batch> <nanotorch_us> <ort_us> <ratio>`
// lines. Exits 1 on a mismatch or error, 2 on a usage error. Timings on a shared machine are noisy:
// the load average at start is printed; compare ratios of one run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';

import { TOLERANCE, compareOutput, encodeTensor, outputFile, readTensor } from '../tests/js/onnx_run_io.mjs';

const BATCH = [1, 64];

// name: short label for the table; dir: which option's directory; file: the .onnx; batches; input:
// f32 (a raw little-endian float32 file whose first batch * prod(sample) values are used), or
// random (seeded standard normal); sample: one sample's shape; batched: the first input dimension
// is the batch (false: the model takes `sample` as it is, no batch axis).
const MODELS = [
  { name: 'seed 28x28 net (opset 13, static batch)', dir: 'e2e', file: 'net28.onnx', batches: [1],
    f32: 'input_net28.f32', sample: [1, 28, 28], batched: true },
  { name: 'seed canvas model (opset 9)', dir: 'e2e', file: 'canvas.onnx', batches: [1],
    f32: 'input_canvas.f32', sample: [280 * 280 * 4], batched: false },
  { name: 'seed 28x28 net (opset 13, dynamic batch)', dir: 'exportCheck', file: 'net_opset13.onnx', batches: BATCH,
    f32: 'digits_28.f32', sample: [1, 28, 28], batched: true },
  { name: 'Fashion-MNIST ResNet8 (opset 13)', dir: 'exportCheck', file: 'fashion_opset13.onnx', batches: BATCH,
    f32: 'fashion_28.f32', sample: [1, 28, 28], batched: true },
  { name: 'torch residual net (opset 13)', dir: 'torch', file: 'torch_residual_opset13.onnx', batches: BATCH,
    random: 1, sample: [3, 16, 16], batched: true },
  { name: 'torch pooling net (opset 13)', dir: 'torch', file: 'torch_pools_opset13.onnx', batches: BATCH,
    random: 2, sample: [3, 17, 17], batched: true },
];
const DIR_OPTION = { e2e: '--e2e', exportCheck: '--export-check', torch: '--torch' };

function usage(msg) {
  if (msg) console.error(`ort_models: ${msg}`);
  console.error('usage: node bench/ort_models.mjs ONNX_RUN [--e2e DIR] [--export-check DIR] [--torch DIR] ' +
                '[--rounds R] [--block-ms MS] [--quick]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { onnxRun: null, dirs: {}, rounds: 9, blockMs: 400 };
  const positive = (name, v, max) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) usage(`${name}: '${v}' is not a whole number in [1, ${max}]`);
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === '--help' || a === '-h') usage();
    else if (a === '--e2e') o.dirs.e2e = value();
    else if (a === '--export-check') o.dirs.exportCheck = value();
    else if (a === '--torch') o.dirs.torch = value();
    else if (a === '--rounds') o.rounds = positive(a, value(), 1000);
    else if (a === '--block-ms') o.blockMs = positive(a, value(), 60000);
    else if (a === '--quick') { o.rounds = 3; o.blockMs = 60; }
    else if (a.startsWith('-')) usage(`unknown argument '${a}'`);
    else if (o.onnxRun === null) o.onnxRun = a;
    else usage(`unexpected argument '${a}'`);
  }
  if (o.onnxRun === null) usage('missing ONNX_RUN (the onnx_run binary)');
  if (Object.keys(o.dirs).length === 0) usage('no model directory given (--e2e, --export-check or --torch)');
  return o;
}

// ---- inputs ----

function readF32(path, count) {
  const buf = readFileSync(path);
  if (buf.length < 4 * count) throw new Error(`${path}: ${buf.length} bytes, ${4 * count} needed (${count} float32)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out = new Float32Array(count);
  for (let i = 0; i < count; ++i) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** Standard normal float32 values from a seeded generator (mulberry32 + Box-Muller): the same every run. */
function normals(count, seed) {
  let s = seed >>> 0;
  const uniform = () => {  // mulberry32: a 32-bit state, uniform in (0, 1)
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())), phi = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(phi);
    if (i + 1 < count) out[i + 1] = r * Math.sin(phi);
  }
  return out;
}

function makeInput(model, dir, batch) {
  const dims = model.batched ? [batch, ...model.sample] : [...model.sample];
  const count = dims.reduce((a, b) => a * b, 1);
  const data = model.f32 ? readF32(join(dir, model.f32), count) : normals(count, 20261203 + model.random);
  return { dims, data };
}

// ---- the two runtimes ----

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function runOnnxRun(onnxRun, args) {
  const r = spawnSync(onnxRun, [...args, '--threads', '1', '--quiet'], { encoding: 'utf8', timeout: 600000 });
  if (r.error) throw new Error(`onnx_run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`onnx_run exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  return r.stdout;
}

/** onnx_run's median over `runs` timed runs, in microseconds (examples/onnx_run.hpp time_line). */
function timeNanotorch(onnxRun, modelPath, inputPath, runs) {
  const out = runOnnxRun(onnxRun, [modelPath, '--input', inputPath, '--time', String(runs)]);
  const m = out.match(/^time: median ([0-9.]+) us over ([0-9]+) runs? \(.*\), ([0-9]+) threads?$/m);
  if (!m) throw new Error(`onnx_run printed no time line: ${out.trim().split('\n')[0]}`);
  if (Number(m[2]) !== runs || Number(m[3]) !== 1) throw new Error(`onnx_run timed ${m[2]} runs on ${m[3]} threads, not ${runs} on 1`);
  return Number(m[1]);
}

async function timeOrt(session, feeds, runs) {
  const samples = new Array(runs);
  for (let i = 0; i < runs; ++i) {
    const t0 = performance.now();
    await session.run(feeds);
    samples[i] = (performance.now() - t0) * 1e3;  // microseconds
  }
  return median(samples);
}

// ---- one model at one batch ----

async function benchOne(o, model, dir, batch, work) {
  const modelPath = join(dir, model.file);
  if (!existsSync(modelPath)) throw new Error(`${modelPath} is missing (see ${DIR_OPTION[model.dir]} in --help)`);
  const { dims, data } = makeInput(model, dir, batch);
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
  });
  if (session.inputNames.length !== 1) throw new Error(`${model.file}: ${session.inputNames.length} inputs, this bench feeds one`);
  const inputPath = join(work, `${model.file}.b${batch}.pb`);
  writeFileSync(inputPath, encodeTensor(session.inputNames[0], dims, data));
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };

  // The answers first: the same outputs within the interop check's tolerance, or no timing.
  const ref = await session.run(feeds);
  const outDir = join(work, `out_${model.file}_b${batch}`);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  runOnnxRun(o.onnxRun, [modelPath, '--input', inputPath, '--output', outDir + '/']);
  const checks = session.outputNames.map((name) => {
    const r = ref[name];
    return compareOutput({ name, class_vector: false }, readTensor(join(outDir, outputFile(name))),
                         { type: r.type, dims: r.dims.map(Number), data: r.data });
  });
  const bad = checks.filter((c) => !c.ok);
  if (bad.length) throw new Error(`${model.file} batch ${batch}: outputs differ from onnxruntime's: ${bad.map((c) => c.text).join('; ')}`);
  const worst = Math.max(...checks.map((c) => c.scaled));

  // Runs per block from ORT's warm-up speed, the same N for both runtimes.
  const warm = [];
  const tWarm = performance.now();
  while (warm.length < 5 || (warm.length < 200 && performance.now() - tWarm < 100)) {
    const t0 = performance.now();
    await session.run(feeds);
    warm.push((performance.now() - t0) * 1e3);
  }
  const runs = Math.max(10, Math.min(20000, Math.round((o.blockMs * 1e3) / median(warm))));

  const nt = [], ortT = [];
  for (let r = 0; r < o.rounds; ++r) {
    if (r % 2 === 0) {
      nt.push(timeNanotorch(o.onnxRun, modelPath, inputPath, runs));
      ortT.push(await timeOrt(session, feeds, runs));
    } else {
      ortT.push(await timeOrt(session, feeds, runs));
      nt.push(timeNanotorch(o.onnxRun, modelPath, inputPath, runs));
    }
  }
  await session.release?.();
  return { model, batch, runs, worst, nt: median(nt), ntRange: [Math.min(...nt), Math.max(...nt)],
           ort: median(ortT), ortRange: [Math.min(...ortT), Math.max(...ortT)] };
}

// ---- main ----

const us = (v) => (v >= 1000 ? v.toFixed(0) : v.toFixed(1));

async function main(argv) {
  const o = parseArgs(argv);
  const started = new Date();
  const [l1, l5, l15] = loadavg();
  console.log(`ort_models: ${started.toISOString()}; load average ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)} ` +
              `(1, 5, 15 min) at start on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'})`);
  console.log(`node ${process.version}; onnxruntime-node ${ort.env?.versions?.node ?? '?'} (cpu EP, 1 intra-op and ` +
              `1 inter-op thread, sequential, default optimisations) vs ${o.onnxRun} --threads 1; ` +
              `${o.rounds} alternating rounds of ~${o.blockMs} ms per runtime; outputs checked first ` +
              `(max|diff| <= ${TOLERANCE.toExponential()} * max(1, max|ort|))`);
  for (const [key, opt] of Object.entries(DIR_OPTION))
    if (!o.dirs[key]) console.log(`note: no ${opt}: skipping ${MODELS.filter((m) => m.dir === key).map((m) => m.file).join(', ')}`);

  const work = mkdtempSync(join(tmpdir(), 'ort_models-'));
  const rows = [];
  try {
    for (const model of MODELS) {
      const dir = o.dirs[model.dir];
      if (!dir) continue;
      for (const batch of model.batches) {
        const row = await benchOne(o, model, dir, batch, work);
        rows.push(row);
        const ratio = row.ort / row.nt;
        console.log(`${model.name.padEnd(42)} batch ${String(batch).padStart(2)}  ` +
                    `nanotorch ${us(row.nt).padStart(8)} us [${us(row.ntRange[0])}-${us(row.ntRange[1])}]  ` +
                    `ORT ${us(row.ort).padStart(8)} us [${us(row.ortRange[0])}-${us(row.ortRange[1])}]  ` +
                    `ORT/nanotorch ${ratio.toFixed(2)} (${ratio >= 1 ? 'nanotorch faster' : 'ORT faster'}); ` +
                    `${row.runs} runs per block, max|diff| ${row.worst.toExponential(1)}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  console.log('\n| model | batch | nanotorch | onnxruntime-node | ORT / nanotorch |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    const ratio = r.ort / r.nt;
    const verdict = ratio >= 1 ? '' : ' (**ORT faster**)';
    console.log(`| ${r.model.name} | ${r.batch} | ${us(r.nt)} µs | ${us(r.ort)} µs | ${ratio.toFixed(2)}${verdict} |`);
  }
  const [e1] = loadavg();
  console.log(`\nload average at the end: ${e1.toFixed(2)}; ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
  for (const r of rows)
    console.log(`RESULT ort_models ${r.model.file.replace(/\.onnx$/, '')} ${r.batch} ${r.nt.toPrecision(6)} ` +
                `${r.ort.toPrecision(6)} ${(r.ort / r.nt).toFixed(3)}`);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`ort_models: error: ${e?.message ?? e}`);
  process.exit(1);
});
