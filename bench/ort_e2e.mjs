// bench/ort_e2e.mjs — batch-1 latency of the seed's two models in onnxruntime-node, for the ratios
// scripts/bench.sh prints next to bench_e2e (nanotorch) and torch_e2e.py (PyTorch).
//
//   node bench/ort_e2e.mjs EXPORT_DIR [--threads N] [--quick]
//
// EXPORT_DIR is what `bench_e2e --export-dir EXPORT_DIR` wrote: net28.onnx (Net, [1, 1, 28, 28] ->
// log-probabilities, opset 13), canvas.onnx (InferenceNet, [313600] RGBA -> probabilities, opset
// 9), their inputs input_<model>.f32 and nanotorch's outputs expected_<model>.f32 (raw
// little-endian float32). Each model is first checked: every output within 1e-5 * max(1, |expected|)
// of nanotorch's (the runtimes sum convolutions in different orders, so a few float32 ulps differ;
// the bound is the one tests/js/check_runtimes.mjs uses and explains). Then both sessions run
// alternately, call by call, each call awaited and timed alone; the median is reported.
// Session options: CPU execution provider, intraOpNumThreads = N (default 1), interOpNumThreads 1,
// sequential execution, ORT's default graph optimisations (what a user gets out of the box).
// Prints lines `RESULT ort <threads> latency_<model>_onnx <microseconds> us`; exits 1 on a mismatch
// or error, 2 on a usage error. The timings include onnxruntime-node's JS <-> native marshalling,
// as a Node user would see it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';

const TOLERANCE = 1e-5;

function usage(msg) {
  if (msg) console.error(`ort_e2e: ${msg}`);
  console.error('usage: node bench/ort_e2e.mjs EXPORT_DIR [--threads N] [--quick]');
  process.exit(2);
}

function readF32(path) {
  const buf = readFileSync(path);
  if (buf.length % 4 !== 0) throw new Error(`${path}: ${buf.length} bytes is not a whole number of float32`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; ++i) out[i] = view.getFloat32(4 * i, true);
  return out;
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function quantile(v, q) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.round(q * (s.length - 1))];
}

async function main(argv) {
  let dir = null, threads = 1, quick = false;
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--threads') {
      threads = Number(argv[++i]);
      if (!Number.isInteger(threads) || threads < 1 || threads > 1024)
        usage(`--threads: '${argv[i]}' is not in [1, 1024]`);
    } else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('--')) usage(`unknown argument '${a}'`);
    else if (dir === null) dir = a;
    else usage(`unexpected argument '${a}'`);
  }
  if (dir === null) usage('missing EXPORT_DIR');

  const options = {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  const models = [];
  for (const [name, dims] of [['net28', [1, 1, 28, 28]], ['canvas', [280 * 280 * 4]]]) {
    const session = await ort.InferenceSession.create(join(dir, `${name}.onnx`), options);
    const input = new ort.Tensor('float32', readF32(join(dir, `input_${name}.f32`)), dims);
    const feeds = { [session.inputNames[0]]: input };
    const expected = readF32(join(dir, `expected_${name}.f32`));
    const got = (await session.run(feeds))[session.outputNames[0]].data;
    if (got.length !== expected.length)
      throw new Error(`${name}: ${got.length} outputs, nanotorch gave ${expected.length}`);
    let worst = 0;
    for (let i = 0; i < got.length; ++i) {
      const d = Math.abs(got[i] - expected[i]);
      worst = Math.max(worst, d);
      if (!(d <= TOLERANCE * Math.max(1, Math.abs(expected[i]))))
        throw new Error(`${name}: output ${i} is ${got[i]}, nanotorch gave ${expected[i]} (tolerance ${TOLERANCE})`);
    }
    models.push({ name, session, feeds, samples: [], worst });
  }

  const rounds = quick ? 300 : 3000;
  for (const m of models) for (let i = 0; i < 50; ++i) await m.session.run(m.feeds);
  for (let r = 0; r < rounds; ++r) {
    for (const m of models) {
      const t0 = performance.now();
      await m.session.run(m.feeds);
      m.samples.push((performance.now() - t0) * 1e3);  // microseconds
    }
  }

  const version = ort.env?.versions?.node ?? '?';
  console.log(`ort_e2e: onnxruntime-node ${version}, intraOpNumThreads ${threads}, ${quick ? '--quick' : 'full'}`);
  for (const m of models) {
    const label = (m.name === 'net28' ? '28x28 net' : 'canvas model').padEnd(20);
    console.log(`${label} ${median(m.samples).toFixed(1).padStart(8)} us` +
                `  q1 ${quantile(m.samples, 0.25).toFixed(1)}, q3 ${quantile(m.samples, 0.75).toFixed(1)}, ` +
                `${m.samples.length} calls; max |diff| vs nanotorch ${m.worst.toExponential(1)}`);
  }
  for (const m of models)
    console.log(`RESULT ort ${threads} latency_${m.name}_onnx ${median(m.samples).toPrecision(6)} us`);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`ort_e2e: error: ${e.message ?? e}`);
  process.exit(1);
});
