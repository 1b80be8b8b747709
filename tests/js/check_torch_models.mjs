// tests/js/check_torch_models.mjs — runs the models other exporters write (made by
// tests/python/make_torch_models.py) with nanotorch's onnx_run and with onnxruntime-node, and
// requires the two to agree on every output.
//
//   node tests/js/check_torch_models.mjs OUTDIR ONNX_RUN
//
// OUTDIR is what make_torch_models.py wrote (manifest.json, the .onnx files, the inputs as
// TensorProto .pb files); ONNX_RUN is the onnx_run binary (e.g. build/ci-gcc-release/examples/onnx_run).
// For every model and batch (1 and 3, the batch dimension is symbolic):
//   nanotorch         onnx_run MODEL --input X.pb --output DIR/ --threads 1 --quiet, which writes
//                     each output as a TensorProto NAME.pb (read back by the decoder below);
//   onnxruntime-node  an InferenceSession on the CPU execution provider with 1 intra-op and 1
//                     inter-op thread, fed the same .pb input.
// An output passes when its element type and shape are the same and
//   max |nanotorch - ort| <= 1e-5 * max(1, max |ort|)
// Why 1e-5 and not 0: both runtimes compute in float32, but they sum convolutions, Gemms, pools
// and reductions in a different order (ORT also fuses Conv+BatchNorm and uses FMA), so results
// differ by a few ulps of the partial sums; a wrong attribute, padding, layout or formula moves
// outputs by far more. Why scaled by max(1, max|ort|): one float32 ulp of a value near 30 is
// already 2e-6, so large-magnitude outputs (log-probabilities, unnormalised features) get the
// same relative budget. Integer outputs (MaxPool's Indices) must be equal. For an output the
// manifest marks as a class vector ([batch, classes] scores) the argmax of every row must be
// the same as well.
// A model with "reference_file" (the opset-6 graph: onnxruntime has no kernels below opset 7) is
// run by onnxruntime in that file's form, its opset-7 twin, and by nanotorch as written.
// Prints one line per model and batch (PASS/FAIL and the largest difference), then
// "N passed, M failed, K skipped" (K: the combinations make_torch_models.py could not export);
// exits 1 on any failure, 2 on a usage error.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import ort from 'onnxruntime-node';

import { TOLERANCE, compareOutput, outputFile, readTensor } from './onnx_run_io.mjs';

/** Runs onnx_run on one input; returns the outputs it wrote, by manifest output name. */
function runNanotorch(onnxRun, modelPath, inputs, outDir, outputs) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const args = [modelPath, ...inputs.flatMap((f) => ['--input', f]), '--output', outDir + '/', '--threads', '1', '--quiet'];
  const r = spawnSync(onnxRun, args, { encoding: 'utf8', timeout: 60000 });
  if (r.error) throw new Error(`onnx_run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`onnx_run exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  const got = {};
  for (const o of outputs) got[o.name] = readTensor(join(outDir, outputFile(o.name)));
  return got;
}

// ---- main ----

async function main(argv) {
  if (argv.length !== 2 || argv[0] === '-h' || argv[0] === '--help') {
    console.error('usage: node tests/js/check_torch_models.mjs OUTDIR ONNX_RUN   (OUTDIR written by tests/python/make_torch_models.py)');
    return 2;
  }
  const [dir, onnxRun] = argv;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  console.log(`node ${process.version}; onnxruntime-node ${ort.env?.versions?.node ?? '?'} (cpu, 1 thread) vs ${onnxRun} ` +
    `(--threads 1); ${manifest.models.length} models from ${dir}; tolerance max|diff| <= ${TOLERANCE.toExponential()} * max(1, max|ort|)`);
  const t0 = performance.now();
  let passed = 0, failed = 0, worst = 0;
  for (const model of manifest.models) {
    let session = null;
    for (const run of model.runs) {
      const label = `${model.name.padEnd(30)} batch ${run.batch}`;
      try {
        if (!session) {
          session = await ort.InferenceSession.create(join(dir, model.reference_file ?? model.file), {
            executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
          });
        }
        const files = run.inputs.map((f) => join(dir, f));
        const feeds = {};
        files.forEach((f, k) => {
          const t = readTensor(f);
          feeds[model.inputs[k]] = new ort.Tensor(t.type, t.data, t.dims);
        });
        const ref = await session.run(feeds);
        const nt = runNanotorch(onnxRun, join(dir, model.file), files, join(dir, 'nanotorch', `${model.name}_b${run.batch}`), model.outputs);
        const results = model.outputs.map((o) => {
          const r = ref[o.name];
          if (!r) return { ok: false, text: `${o.name}: onnxruntime gave no such output` };
          return compareOutput(o, nt[o.name], { type: r.type, dims: r.dims.map(Number), data: r.data });
        });
        const ok = results.every((r) => r.ok);
        const text = results.map((r) => r.text).join('; ') + (model.reference_file ? ` (onnxruntime ran ${model.reference_file})` : '');
        for (const r of results) if (Number.isFinite(r.scaled)) worst = Math.max(worst, r.scaled);
        console.log(`${ok ? 'PASS' : 'FAIL'} ${label}  ${text}`);
        ok ? ++passed : ++failed;
      } catch (e) {
        console.log(`FAIL ${label}  ${e?.message ?? e}`);
        ++failed;
      }
    }
  }
  for (const s of manifest.skipped) console.log(`skip ${s.name.padEnd(30)} ${s.reason}`);
  console.log(`largest difference (scaled by max(1, max|ort|)): ${worst.toExponential(2)}; ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed, ${manifest.skipped.length} skipped`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`check_torch_models.mjs: ${e?.stack ?? e}`);
    console.log('0 passed, 1 failed, 0 skipped');
    process.exitCode = 1;
  },
);
