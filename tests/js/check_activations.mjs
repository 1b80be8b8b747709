// tests/js/check_activations.mjs — runs nanotorch's activation exports in onnxruntime-node and ONNX.js.
//
//   node tests/js/check_activations.mjs DIR
//
// DIR is what tests/test_activation.cpp writes: <name>_opset<k>.onnx, input.f32 (the input, [4, 33])
// and <name>.f32 (nanotorch's forward), raw little-endian float32. Every model runs in
// onnxruntime-node (CPU); the opset <= 9 ones (the ONNX.js profile) also in ONNX.js 0.1.8's cpu
// backend. A model passes when every output element is within 1e-6 + 1e-6·|expected| of
// nanotorch's: the runtimes evaluate exp/tanh/erf with their own code, and the composed graphs
// (silu, gelu, hardswish before opset 14) round differently from nanotorch's fused kernels, each
// by a few ulp of values up to 7 (one ulp at 7 is 4.8e-7). Prints one line per model and run,
// then `onnxruntime-node: N passed, N failed; onnxjs: N passed, N failed`; exits 1 on any failure.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import ort from 'onnxruntime-node';
import onnxjs from 'onnxjs';

const DIMS = [4, 33];

function readF32(path) {
  const buf = readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; ++i) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** Largest |got - want| / (1e-6 + 1e-6·|want|): at most 1 passes. */
function worst(got, want) {
  if (got.length !== want.length) return Infinity;
  let w = 0;
  for (let i = 0; i < want.length; ++i) w = Math.max(w, Math.abs(got[i] - want[i]) / (1e-6 + 1e-6 * Math.abs(want[i])));
  return w;
}

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node tests/js/check_activations.mjs DIR');
    process.exit(2);
  }
  const input = readF32(join(dir, 'input.f32'));
  const tally = { 'onnxruntime-node': [0, 0], onnxjs: [0, 0] };
  const files = readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  for (const file of files) {
    const m = file.match(/^(.*)_opset(\d+)\.onnx$/);
    const want = readF32(join(dir, m[1] + '.f32'));
    const report = (runtime, got) => {
      const w = worst(got, want);
      const ok = w <= 1;
      tally[runtime][ok ? 0 : 1] += 1;
      console.log(`${ok ? 'PASS' : 'FAIL'} ${runtime} ${file}: worst error / allowed = ${w.toFixed(3)}`);
    };
    const session = await ort.InferenceSession.create(join(dir, file), { executionProviders: ['cpu'] });
    const out = await session.run({ input: new ort.Tensor('float32', input, DIMS) });
    report('onnxruntime-node', out[session.outputNames[0]].data);
    if (Number(m[2]) <= 9) {
      const js = new onnxjs.InferenceSession({ backendHint: 'cpu' });
      await js.loadModel(new Uint8Array(readFileSync(join(dir, file))));
      const res = await js.run([new onnxjs.Tensor(input, 'float32', DIMS)]);
      report('onnxjs', res.values().next().value.data);
    }
  }
  const [op, of] = tally['onnxruntime-node'];
  const [jp, jf] = tally.onnxjs;
  console.log(`onnxruntime-node: ${op} passed, ${of} failed; onnxjs: ${jp} passed, ${jf} failed`);
  process.exit(of + jf > 0 || files.length === 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(`check_activations.mjs: ${e.stack || e}`);
  process.exit(1);
});
