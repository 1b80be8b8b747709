// tests/js/e2e_teach.mjs — teaching the draw-a-digit page a handwriting style, end to end in a real
// browser (Debian's Chromium, headless, playwright-core), with real mouse strokes and real clicks.
//
//   node tests/js/e2e_teach.mjs MODEL.onnx [--data data/mnist] [--rotate 90] [--screenshot PATH]
//        [--max-baseline 0.6] [--min-gain 0.25] [--max-mnist-drop 0.015]
//
// The style: MNIST test digits redrawn along their skeleton (browser_lib.mjs digitStrokes) and
// rotated by --rotate degrees (clockwise on screen; browser_lib.mjs styleStrokes) — someone writing
// with the page turned sideways. Why 90°: the shipped model (mnist_train, 1 epoch) reads such
// drawings 14 % right, well under the 60 % the issue allows, while its MNIST accuracy is unchanged
// (the style is in the strokes, not in the model). Smaller angles read better: 45° 48 %, 60° 30 %.
// The drawings come from MNIST test digits 1000 onward, so they never overlap the 1,000 digits
// (test digits 0-999) the MNIST accuracy is measured on:
//   teach set  the first 3 of each digit (30 drawings), corrected in rounds 0-9, 0-9, 0-9;
//   other set  the next 5 of each digit (50 drawings), never taught.
//
// Checks (one line each; exits 1 on any failure):
//   loads        the page (default runtime, onnxruntime-web) and its learner start;
//   baseline     the shipped model reads at most --max-baseline of the other set right (bars);
//   corrections  each of the 30 corrections (draw, click #teach-K) counts in #learn-status, and
//                afterwards the bars (onnxruntime-web, given the new model's bytes) show the same
//                probabilities as nanotorch-wasm's own prediction with the learned weights
//                (within 0.15 % points: the bars are rounded to 0.1 %; the two runtimes agree
//                to ~1e-6 on the same weights);
//   learns       after them the other set is read right >= --min-gain more often (absolute);
//   keeps MNIST  accuracy on MNIST test digits 0-999 (nanotorch-wasm's evaluate in the page) drops
//                by at most --max-mnist-drop;
//   privacy      no network request at all between the end of loading and the end of the test
//                phase (playwright request events, downloads included);
//   download     #download-model gives an ONNX file that onnxruntime-web and ONNX.js load (as the
//                shipped model of a fresh page) and whose top class, for 20 of the other set,
//                is nanotorch-wasm's argmax on the fine-tuned page;
//   reload       after a reload the page has learned from 30 drawings, and its MNIST accuracy and
//                the bars for 5 drawings are those from before the reload;
//   runtimes     a correction under ?runtime=onnxjs and under ?runtime=nanotorch updates their
//                bars to nanotorch-wasm's prediction too;
//   reset        #reset-model brings back the shipped model (MNIST accuracy as before teaching,
//                exactly) and 0 learned drawings, also after a reload;
//   errors       nothing reached the error box or the console as an error.
// Timing of one correction (learn + update bars, app.js lastCorrection) is printed, not asserted.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  ROOT, canvasGeometry, digitStrokes, drawStrokes, launchChromium, parseArgs, readMnistTest, serveDir,
  stageSite, styleStrokes,
} from './browser_lib.mjs';

const USAGE = 'usage: node tests/js/e2e_teach.mjs MODEL.onnx [--data DIR] [--rotate DEG] [--screenshot PATH] [--max-baseline F] [--min-gain F] [--max-mnist-drop F]';
const LOAD_TIMEOUT_MS = 60_000;

let passed = 0;
let failed = 0;
function check(ok, name, detail = '') {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  ok ? ++passed : ++failed;
  return ok;
}

const pct = (x) => `${(100 * x).toFixed(1)} %`;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Teach and other sets: from test digit 1000 on, the first 3 / next 5 of each digit. */
function styledSets(digits, first = 1000) {
  const teach = [];
  const other = [];
  const seen = new Array(10).fill(0);
  for (let i = first; i < digits.labels.length && teach.length + other.length < 80; ++i) {
    const label = digits.labels[i];
    if (seen[label] >= 8) continue;
    (seen[label] < 3 ? teach : other).push({ index: i, label, round: seen[label] });
    ++seen[label];
  }
  if (teach.length !== 30 || other.length !== 50) throw new Error(`not enough test digits after #${first}`);
  teach.sort((a, b) => a.round - b.round || a.label - b.label); // rounds 0-9, 0-9, 0-9
  return { teach, other };
}

/** What the page shows: per-class probability from the bars' titles, top class or -1, learn count, error. */
function readPage(page) {
  return page.evaluate(() => ({
    probs: [...document.querySelectorAll('.prediction-col')].map((c) => (c.title ? Number(c.title.split(':')[1].replace('%', '')) / 100 : 0)),
    top: [...document.querySelectorAll('.top-prediction')].map((c) => Number(c.id.replace('prediction-', '')))[0] ?? -1,
    learned: Number(document.getElementById('learn-status').dataset.count ?? -1),
    status: document.getElementById('learn-status').textContent,
    error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent,
  }));
}

async function load(page, url) {
  await page.goto(url);
  return page.evaluate((ms) => Promise.race([
    Promise.all([window.nanotorch.ready, window.nanotorch.teachReady]),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`not loaded after ${ms} ms`)), ms)),
  ]), LOAD_TIMEOUT_MS);
}

async function clear(page) {
  await page.click('#clear-button');
  await page.evaluate(() => window.nanotorch.settled());
}

/** Draws one styled digit with the mouse and waits for its bars. */
async function draw(page, geometry, strokes) {
  await drawStrokes(page, strokes, geometry);
  await page.evaluate(() => window.nanotorch.settled());
}

/** Reads each drawing of `set` back from the bars; also nanotorch-wasm's argmax when `learner`. */
async function readSet(page, geometry, strokesOf, set, { learner = false } = {}) {
  const tops = [];
  const learnerTops = [];
  for (const d of set) {
    await draw(page, geometry, strokesOf(d));
    tops.push((await readPage(page)).top);
    if (learner) {
      const p = await page.evaluate(() => window.nanotorch.predictLearner().then((x) => Array.from(x)));
      learnerTops.push(p.indexOf(Math.max(...p)));
    }
    await clear(page);
  }
  const correct = tops.filter((t, i) => t === set[i].label).length;
  return { tops, learnerTops, correct, accuracy: correct / set.length };
}

/** Bars vs nanotorch-wasm's own prediction on the canvas: the largest difference, in probability. */
async function barsVsLearner(page) {
  const shown = await readPage(page);
  const p = await page.evaluate(() => window.nanotorch.predictLearner().then((x) => Array.from(x)));
  return Math.max(...p.map((v, i) => Math.abs(v - shown.probs[i])));
}

async function mnistAccuracy(page, mnist) {
  return page.evaluate(({ images, labels }) => {
    const decode = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    return window.nanotorch.evaluate(decode(images), decode(labels));
  }, mnist);
}

async function main(argv) {
  const opts = parseArgs(argv, {
    data: join(ROOT, 'data/mnist'), rotate: 90, screenshot: join(tmpdir(), 'nanotorch-teach.png'),
    'max-baseline': 0.6, 'min-gain': 0.25, 'max-mnist-drop': 0.015,
  });
  if (opts.help || opts.positional.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const digits = readMnistTest(opts.data, 1400);
  const { teach, other } = styledSets(digits);
  const strokesOf = (d) => styleStrokes(digitStrokes(digits.images[d.index]), { rotate: opts.rotate });
  const mnist = {
    images: Buffer.concat(digits.images.slice(0, 1000)).toString('base64'),
    labels: Buffer.from(digits.labels.slice(0, 1000)).toString('base64'),
  };
  rmSync(opts.screenshot, { force: true });

  const site = stageSite(opts.positional[0], opts.data);
  const server = await serveDir(site);
  const browser = await launchChromium();
  const downloads = mkdtempSync(join(tmpdir(), 'nanotorch-download-'));
  let downloadSite = null;
  let downloadServer = null;
  console.log(`Chromium ${browser.version}; page staged in ${site}, served at ${server.origin}; style: MNIST test digits redrawn rotated by ${opts.rotate}°`);
  try {
    const page = await browser.context.newPage();
    const uncaught = [];
    page.on('pageerror', (e) => uncaught.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && uncaught.push(`console: ${m.text()}`));
    const requests = [];
    let watching = false;
    // Every request of the context (the page, its worker, downloads) except to the second site
    // that the downloaded model is served from below, which is the test's, not the page's.
    browser.context.on('request', (r) => watching && !(downloadServer && r.url().startsWith(downloadServer.origin)) && requests.push(r.url()));
    /** (Re)loads the page; requests while it loads are allowed, so they are not watched. */
    const reload = async (query = '') => {
      watching = false;
      const result = await load(page, `${server.origin}/${query}`);
      watching = true;
      return result;
    };

    const [info, learner] = await reload();
    check(learner.examples === 0 && learner.replayDigits > 0, 'loads', `${info.runtime}, learner ready with ${learner.replayDigits} replay digits`);
    const geometry = await canvasGeometry(page);

    // ---- baseline ----
    const mnistBefore = await mnistAccuracy(page, mnist);
    const before = await readSet(page, geometry, strokesOf, other);
    check(before.accuracy <= opts['max-baseline'], `baseline <= ${pct(opts['max-baseline'])}`,
      `the shipped model reads ${before.correct}/50 (${pct(before.accuracy)}) of the rotated drawings right; MNIST test 0-999: ${pct(mnistBefore)}`);

    // ---- 30 corrections ----
    const timings = [];
    let worstBars = 0;
    let countsOk = true;
    let readRight = 0;
    for (const [k, d] of teach.entries()) {
      await draw(page, geometry, strokesOf(d));
      await page.click(`#teach-${d.label}`);
      await page.evaluate(() => window.nanotorch.settled());
      const shown = await readPage(page);
      countsOk &&= shown.learned === k + 1 && shown.status.includes(`${k + 1} of your drawing`);
      worstBars = Math.max(worstBars, await barsVsLearner(page));
      readRight += shown.top === d.label;
      timings.push(await page.evaluate(() => window.nanotorch.lastCorrection));
      if (k === teach.length - 1) await page.screenshot({ path: opts.screenshot, fullPage: true });
      await clear(page);
    }
    check(countsOk, 'corrections counted', `#learn-status: "${(await readPage(page)).status}"`);
    check(worstBars <= 0.0015, 'bars show the learned model', `largest difference between the bars (onnxruntime-web) and nanotorch-wasm: ${(100 * worstBars).toFixed(2)} % points`);
    const total = timings.map((t) => t.totalMs);
    const learn = timings.map((t) => t.learnMs);
    console.log(`     one correction (learn + update bars): median ${median(total).toFixed(0)} ms, max ${Math.max(...total).toFixed(0)} ms; ` +
      `of which nanotorch-wasm learn + exportOnnx median ${median(learn).toFixed(0)} ms, runtime update median ${median(timings.map((t) => t.updateMs)).toFixed(1)} ms, ` +
      `bars median ${median(timings.map((t) => t.barsMs)).toFixed(1)} ms; ${readRight}/30 taught drawings read right just after their correction`);

    // ---- after ----
    const after = await readSet(page, geometry, strokesOf, other, { learner: true });
    const mnistAfter = await mnistAccuracy(page, mnist);
    const gain = after.accuracy - before.accuracy;
    check(gain >= opts['min-gain'], `learns the style (>= +${(100 * opts['min-gain']).toFixed(0)} points)`,
      `other rotated drawings: ${before.correct}/50 -> ${after.correct}/50 (${pct(before.accuracy)} -> ${pct(after.accuracy)}, ${gain >= 0 ? '+' : ''}${(100 * gain).toFixed(0)} points)`);
    check(mnistBefore - mnistAfter <= opts['max-mnist-drop'] + 1e-9, `keeps MNIST (drop <= ${(100 * opts['max-mnist-drop']).toFixed(1)} points)`,
      `MNIST test 0-999 (nanotorch-wasm evaluate): ${pct(mnistBefore)} -> ${pct(mnistAfter)}`);
    const agree = after.tops.filter((t, i) => t === after.learnerTops[i]).length;
    console.log(`     bars (onnxruntime-web) and nanotorch-wasm agree on ${agree}/50 of the other set after teaching`);

    // ---- download ----
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-model')]);
    const file = join(downloads, download.suggestedFilename());
    await download.saveAs(file);
    const size = statSync(file).size;
    downloadSite = stageSite(file, opts.data);
    downloadServer = await serveDir(downloadSite); // another origin: its own, empty IndexedDB
    const sample = other.slice(0, 20);
    for (const [name, query] of [['onnxruntime-web', ''], ['ONNX.js', '?runtime=onnxjs']]) {
      const p = await browser.context.newPage();
      try {
        await load(p, `${downloadServer.origin}/${query}`);
        const got = await readSet(p, await canvasGeometry(p), strokesOf, sample);
        const same = got.tops.filter((t, i) => t === after.learnerTops[i]).length;
        check(same === sample.length, `downloaded model in ${name}`,
          `${download.suggestedFilename()} (${size} bytes): top class = nanotorch-wasm's argmax on ${same}/${sample.length} drawings`);
      } finally {
        await p.close();
      }
    }

    // ---- reload keeps the learned model ----
    await reload();
    const reloaded = await readPage(page);
    const mnistReloaded = await mnistAccuracy(page, mnist);
    const again = await readSet(page, geometry, strokesOf, other.slice(0, 5));
    check(reloaded.learned === 30 && mnistReloaded === mnistAfter && again.tops.every((t, i) => t === after.tops[i]),
      'reload keeps the learned model', `learned from ${reloaded.learned} drawings; MNIST ${pct(mnistReloaded)} (before reload ${pct(mnistAfter)}); ` +
      `tops [${again.tops}] vs [${after.tops.slice(0, 5)}]`);

    // ---- reset ----
    await page.click('#reset-model');
    await page.evaluate(() => window.nanotorch.settled());
    const reset = await readPage(page);
    const mnistReset = await mnistAccuracy(page, mnist);
    await reload();
    const resetReloaded = await readPage(page);
    const mnistResetReloaded = await mnistAccuracy(page, mnist);
    check(reset.learned === 0 && mnistReset === mnistBefore && resetReloaded.learned === 0 && mnistResetReloaded === mnistBefore,
      'reset restores the shipped model', `learned ${reset.learned} (after a reload ${resetReloaded.learned}); MNIST ${pct(mnistReset)} ` +
      `(after a reload ${pct(mnistResetReloaded)}, shipped ${pct(mnistBefore)})`);

    // ---- a correction under the other runtimes ----
    for (const [name, query] of [['ONNX.js', '?runtime=onnxjs'], ['nanotorch-wasm', '?runtime=nanotorch']]) {
      await reload(query);
      const d = teach[0];
      await draw(page, geometry, strokesOf(d));
      const was = await readPage(page);
      await page.click(`#teach-${d.label}`);
      await page.evaluate(() => window.nanotorch.settled());
      const now = await readPage(page);
      const diff = await barsVsLearner(page);
      check(now.learned === 1 && diff <= 0.0015 && now.probs.some((p, i) => Math.abs(p - was.probs[i]) > 0.0015),
        `a correction under ${name}`, `p(${d.label}) ${pct(was.probs[d.label])} -> ${pct(now.probs[d.label])}; bars vs nanotorch-wasm ${(100 * diff).toFixed(2)} % points`);
      await clear(page);
      await page.click('#reset-model');
      await page.evaluate(() => window.nanotorch.settled());
    }
    watching = false;

    // ---- privacy, errors ----
    check(requests.length === 0, 'no network request after loading',
      requests.length ? `${requests.length}: ${requests.slice(0, 5).join(', ')}` : 'none (drawing, 32 corrections, download, evaluations, reset, under 3 runtimes)');
    const shownError = (await readPage(page)).error;
    check(!shownError && uncaught.length === 0, 'no errors', [shownError, ...uncaught].filter(Boolean).join(' | ').slice(0, 500) || 'none');
    await page.close();
  } finally {
    await browser.close();
    await server.close();
    if (downloadServer) await downloadServer.close();
    rmSync(site, { recursive: true, force: true });
    if (downloadSite) rmSync(downloadSite, { recursive: true, force: true });
    rmSync(downloads, { recursive: true, force: true });
  }
  let size = 0;
  try {
    size = statSync(opts.screenshot).size;
  } catch { /* reported below */ }
  check(size > 0, 'screenshot saved', size ? `${opts.screenshot} (${(size / 1024).toFixed(0)} KB)` : `${opts.screenshot} was not written`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => {
    console.error(`e2e_teach.mjs: ${(process.env.DEBUG ? e?.stack : e?.message) ?? e}`);
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exitCode = 1;
  },
);
