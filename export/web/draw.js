// DRAW in the browser: runs the draw-tf TFLite sampler (signature `sample`) with LiteRT.js on wasm
// and animates the canvas step by step with the write window of each step.
//
// The sampler (draw_tf/export/tflite.py):
//   input  z             float32 [batch, T, z_size]  N(0, I) prior noise
//   output images        float32 [batch, H, W, C]    the final mean image in [0, 1]
//   output canvases      float32 [batch, T, H, W, C] the canvas after every step, in [0, 1]
//   output write_windows float32 [batch, T, 5]       gx, gy, sigma^2, delta, gamma, 1-based pixels
//                                                    (only with write attention)
// model.json (written by build.py) names the file and gives N (write_size), which the .tflite
// does not record. Query parameters override it: ?model=other.tflite&write_size=5, and
// ?step_ms=40 sets the animation speed, ?autostart=0 skips the first random drawing.
//
// For tests and scripts: window.drawReady (a promise, resolves once the model is compiled),
// window.drawSample(z) (runs the sampler on given noise, no animation; resolves to the outputs as
// plain arrays with their shapes and the time in ms), window.drawAnimated(z?) (runs and animates;
// random noise without z), window.drawInfo. document.body.dataset.state is loading, ready,
// drawing, done or error.

import {Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

const params = new URLSearchParams(location.search);
const STEP_MS = Number(params.get('step_ms') ?? 50);
const $ = (id) => document.getElementById(id);
const timings = [];
let model = null;
let meta = null;
let queue = Promise.resolve(); // one sampler run at a time
let animation = 0; // id of the current animation; a newer one cancels it

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $('status').textContent = text;
}

function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

function standardNormal(n) {
  // Box-Muller on crypto-quality uniforms in (0, 1].
  const u = new Uint32Array(2 * Math.ceil(n / 2));
  crypto.getRandomValues(u);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log((u[i] + 1) / 4294967296));
    const theta = (2 * Math.PI * u[i + 1]) / 4294967296;
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

function runtimeLog(text) {
  if (/^(INFO|VERBOSE|DEBUG)\b/.test(text)) console.debug(text);
  else if (/^WARNING\b/.test(text)) console.warn(text);
  else console.error(text);
}

async function load() {
  setState('loading', 'Loading LiteRT.js (wasm)…');
  const metaResponse = await fetch('./model.json');
  meta = metaResponse.ok ? await metaResponse.json() : {};
  if (params.get('model')) meta = {...meta, model: params.get('model'), source: params.get('model')};
  if (params.get('write_size')) meta.write_size = Number(params.get('write_size'));
  if (!meta.model) throw new Error('No model: build.py writes model.json, or pass ?model=file.tflite');
  // The wasm runtime writes its log (INFO / WARNING lines) to stderr, which Emscripten sends to
  // console.error by default; route it by severity so console errors mean errors.
  self.Module = {printErr: runtimeLog, print: (text) => console.log(text)};
  await loadLiteRt(new URL('./litert/wasm/', location.href).href);
  setState('loading', `Loading ${meta.model}…`);
  model = await loadAndCompile(new URL(meta.model, location.href).href, {accelerator: 'wasm'});
  const runner = model.signatures[meta.signature ?? 'sample'] ?? model;
  const input = runner.getInputDetails();
  if (input.length !== 1) throw new Error(`Expected one input (z), the sampler has ${input.length}`);
  meta.runner = runner;
  meta.inputName = input[0].name;
  meta.zShape = Array.from(input[0].shape);
  meta.outputs = Object.fromEntries(runner.getOutputDetails().map((d) => [d.name, Array.from(d.shape)]));
  if (!meta.outputs.canvases) throw new Error('The sampler has no `canvases` output (export it with draw_tf.export.export_tflite)');
  const [, steps, height, width, channels] = meta.outputs.canvases;
  Object.assign(meta, {batch: meta.zShape[0], steps, height, width, channels});
  window.drawInfo = {
    model: meta.model, source: meta.source, write_size: meta.write_size ?? null,
    z_shape: meta.zShape, outputs: meta.outputs,
  };
  // One untimed run: XNNPACK sets itself up on the first invoke, which is not the time per image.
  setState('loading', 'Warming up…');
  await run(new Float32Array(product(meta.zShape)));
  $('model').textContent = `model: ${meta.source ?? meta.model} · T = ${steps}, z ${meta.zShape[2]}, ` +
    `${height}×${width}×${channels}` + (meta.write_size ? `, write N = ${meta.write_size}` : '');
  layout();
}

// Runs the sampler once on z (Float32Array of batch*T*z_size); resolves to {outputs, ms}.
function run(z) {
  const job = queue.then(async () => {
    const start = performance.now();
    const input = new Tensor(z, meta.zShape);
    let result;
    try {
      result = await meta.runner.run({[meta.inputName]: input});
    } finally {
      input.delete();
    }
    const outputs = {};
    for (const [name, tensor] of Object.entries(result)) {
      outputs[name] = tensor.toTypedArray();
      tensor.delete();
    }
    const ms = performance.now() - start;
    return {outputs, ms};
  });
  queue = job.catch(() => {});
  return job;
}

function asNoise(z) {
  const n = product(meta.zShape);
  if (z === undefined || z === null) return standardNormal(n);
  const flat = Float32Array.from(Array.isArray(z) ? z.flat(Infinity) : z);
  if (flat.length !== n) throw new Error(`z must have ${n} values (shape ${meta.zShape}), received ${flat.length}`);
  return flat;
}

function recordTiming(ms) {
  const perImage = ms / meta.batch;
  timings.push(perImage);
  const sorted = [...timings].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  $('timing').innerHTML = `time per image: <b>${perImage.toFixed(1)} ms</b>` +
    (timings.length > 1 ? ` (median of ${timings.length}: ${median.toFixed(1)} ms)` : '');
  return perImage;
}

// -- drawing --------------------------------------------------------------------------------------

let view = null;

function layout() {
  // A grey margin around the image: write windows often reach beyond it (early, wide strokes).
  const margin = Math.max(2, Math.round(0.25 * Math.max(meta.width, meta.height)));
  const scale = Math.max(2, Math.floor(400 / (Math.max(meta.width, meta.height) + 2 * margin)));
  const canvas = $('canvas');
  canvas.width = (meta.width + 2 * margin) * scale;
  canvas.height = (meta.height + 2 * margin) * scale;
  const pixels = document.createElement('canvas');
  pixels.width = meta.width;
  pixels.height = meta.height;
  view = {margin, scale, canvas, pixels};
}

// The image [H, W, C] at `offset` of `data` as an offscreen canvas.
function toPixels(data, offset, target) {
  const {width, height, channels} = meta;
  const ctx = target.getContext('2d');
  const image = ctx.createImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < 3; k++) {
      const v = data[offset + p * channels + (channels === 3 ? k : 0)];
      image.data[4 * p + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
    image.data[4 * p + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return target;
}

// The write window in canvas coordinates: pixel a (1-based) covers [a - 1, a] before scaling.
function windowRect(w, margin, scale) {
  const [gx, gy, , delta] = w;
  const n = meta.write_size || 1;
  const half = (delta * (n - 1)) / 2;
  const x = (v) => (margin + v - 0.5) * scale;
  return {x0: x(gx - half), y0: x(gy - half), x1: x(gx + half), y1: x(gy + half), cx: x(gx), cy: x(gy), n, delta};
}

function drawWindow(ctx, w, margin, scale, lineWidth) {
  const r = windowRect(w, margin, scale);
  ctx.strokeStyle = '#ff3b30';
  ctx.fillStyle = '#ff3b30';
  ctx.lineWidth = lineWidth;
  ctx.strokeRect(r.x0, r.y0, Math.max(r.x1 - r.x0, 1), Math.max(r.y1 - r.y0, 1));
  if (lineWidth >= 2) { // the N x N filter centres
    const dot = Math.max(3, scale * 0.4);
    for (let i = 0; i < r.n; i++) {
      for (let j = 0; j < r.n; j++) {
        const px = r.x0 + (r.n > 1 ? (i * (r.x1 - r.x0)) / (r.n - 1) : 0);
        const py = r.y0 + (r.n > 1 ? (j * (r.y1 - r.y0)) / (r.n - 1) : 0);
        ctx.fillRect(px - dot / 2, py - dot / 2, dot, dot);
      }
    }
  }
}

function drawStep(outputs, sample, t) {
  const {steps, width, height, channels} = meta;
  const frame = width * height * channels;
  const {margin, scale, canvas, pixels} = view;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#555';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  toPixels(outputs.canvases, (sample * steps + t) * frame, pixels);
  ctx.drawImage(pixels, margin * scale, margin * scale, width * scale, height * scale);
  let text = `step ${t + 1} / ${steps}`;
  if (outputs.write_windows) {
    const w = outputs.write_windows.subarray((sample * steps + t) * 5, (sample * steps + t + 1) * 5);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, canvas.width, canvas.height);
    ctx.clip();
    drawWindow(ctx, w, margin, scale, 2);
    ctx.restore();
    text += ` · window centre (${w[0].toFixed(1)}, ${w[1].toFixed(1)}), stride δ ${w[3].toFixed(2)}, ` +
      `σ² ${w[2].toFixed(2)}, γ ${w[4].toFixed(2)}`;
  }
  $('step').textContent = text;
  // the step's thumbnail
  const thumbScale = 2;
  const thumb = document.createElement('canvas');
  thumb.width = width * thumbScale;
  thumb.height = height * thumbScale;
  const tctx = thumb.getContext('2d');
  tctx.imageSmoothingEnabled = false;
  tctx.drawImage(pixels, 0, 0, thumb.width, thumb.height);
  if (outputs.write_windows) drawWindow(tctx, outputs.write_windows.subarray((sample * steps + t) * 5), 0, thumbScale, 1);
  thumb.title = `step ${t + 1}`;
  $('steps').appendChild(thumb);
}

function addToHistory(outputs) {
  const {width, height, channels} = meta;
  for (let b = 0; b < meta.batch; b++) {
    const small = document.createElement('canvas');
    small.width = width;
    small.height = height;
    toPixels(outputs.images, b * width * height * channels, small);
    small.style.width = `${2 * width}px`;
    small.style.height = `${2 * height}px`;
    $('history').prepend(small);
  }
  while ($('history').childElementCount > 48) $('history').lastElementChild.remove();
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function animate(outputs) {
  const id = ++animation;
  $('steps').replaceChildren();
  setState('drawing');
  for (let t = 0; t < meta.steps; t++) {
    if (id !== animation) return false;
    drawStep(outputs, 0, t);
    await sleep(STEP_MS);
  }
  if (id !== animation) return false;
  addToHistory(outputs);
  setState('done', 'Done. Click the drawing for another sample.');
  return true;
}

// -- the page's API -------------------------------------------------------------------------------

function plain(outputs, ms) {
  const result = {ms, ms_per_image: ms / meta.batch, shapes: meta.outputs};
  for (const [name, data] of Object.entries(outputs)) result[name] = Array.from(data);
  return result;
}

async function drawSample(z) {
  await window.drawReady;
  const {outputs, ms} = await run(asNoise(z));
  return plain(outputs, ms);
}

async function drawAnimated(z) {
  await window.drawReady;
  setState('drawing', 'Drawing…');
  const {outputs, ms} = await run(asNoise(z));
  const perImage = recordTiming(ms);
  await animate(outputs);
  return {ms, ms_per_image: perImage};
}

window.drawSample = drawSample;
window.drawAnimated = drawAnimated;
window.drawReady = load().then(
  () => setState('ready', 'Ready.'),
  (error) => {
    setState('error', 'Failed.');
    $('error').textContent = String(error && error.stack ? error.stack : error);
    console.error(error);
    throw error;
  },
);
window.drawReady.catch(() => {}); // reported above; keeps the rejection from being unhandled twice

$('canvas').addEventListener('click', () => {
  drawAnimated().catch((error) => { $('error').textContent = String(error); console.error(error); });
});
if (params.get('autostart') !== '0') {
  window.drawReady.then(() => drawAnimated()).catch((error) => {
    if (document.body.dataset.state !== 'error') { $('error').textContent = String(error); console.error(error); }
  });
}
