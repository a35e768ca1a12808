// The lab's page: controls, and the pictures of a run the worker
// (worker.js) reports. Plain DOM and canvas; no framework.

const CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const SHORT = ["tshirt", "trouser", "pullov", "dress", "coat", "sandal", "shirt", "sneakr", "bag", "boot"];

const $ = (id) => document.getElementById(id);
const worker = new Worker("worker.js");

// What the run has reported.
const run = {
  started: false, // a run exists in the worker (trained or loaded)
  running: false,
  batchLosses: [], // [x in epochs, loss]
  epochs: [], // {epoch, trainLoss, valLoss, valAcc}
  batchesPerEpoch: 1,
  stepsTaken: 0,
  firstBatch: null, // {images, labels} of the first validation batch
};

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function settings() {
  const number = (id) => Number($(id).value);
  // softmax: 0 stable, 1 naive (the module's numbering).
  return { lr: number("lr"), batchSize: number("batch-size"), epochs: number("epochs"), seed: number("seed"),
    softmax: number("softmax") };
}

function updateControls() {
  $("start").disabled = run.running || !run.firstBatch;
  $("start").textContent = run.started ? "Continue" : "Start";
  $("pause").disabled = !run.running;
  $("reset").disabled = !run.started || run.running;
  $("save").disabled = !run.started || run.running;
  $("load").disabled = run.running || !run.firstBatch;
  // A run's recipe is fixed; more epochs can be asked for.
  for (const id of ["lr", "batch-size", "seed", "softmax"]) $(id).disabled = run.started;
}

// --- drawing -------------------------------------------------------------

function clear(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  return ctx;
}

// A line chart of `series` ([{points: [[x, y]], color, width, dots}]).
function chart(canvas, series, { xMax, yMin, yMax, yLabel }) {
  const ctx = clear(canvas);
  const pad = { left: 48, right: 12, top: 10, bottom: 28 };
  const w = canvas.width - pad.left - pad.right;
  const h = canvas.height - pad.top - pad.bottom;
  const X = (x) => pad.left + (x / xMax) * w;
  const Y = (y) => pad.top + h - ((y - yMin) / (yMax - yMin)) * h;
  ctx.strokeStyle = "#999";
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.strokeRect(pad.left, pad.top, w, h);
  for (let i = 0; i <= 4; i++) {
    const y = yMin + ((yMax - yMin) * i) / 4;
    ctx.fillText(y.toFixed(2), 4, Y(y) + 4);
  }
  const xStep = Math.max(1, Math.ceil(xMax / 10));
  for (let x = 0; x <= xMax; x += xStep) ctx.fillText(String(x), X(x) - 3, canvas.height - 14);
  ctx.fillText(`epoch   (${yLabel})`, pad.left + w / 2 - 30, canvas.height - 2);
  for (const { points, color, width = 1.5, dots = false } of series) {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    if (dots) for (const [x, y] of points) ctx.fillRect(X(x) - 2.5, Y(y) - 2.5, 5, 5);
  }
  ctx.lineWidth = 1;
}

function drawCurves() {
  const xMax = Math.max(settings().epochs, run.epochs.length, 1);
  const finite = (points) => points.filter(([, y]) => Number.isFinite(y));
  const trainLoss = finite(run.epochs.map((e) => [e.epoch, e.trainLoss]));
  const valLoss = run.epochs.map((e) => [e.epoch, e.valLoss]);
  const losses = [...run.batchLosses, ...trainLoss, ...valLoss].map(([, y]) => y).filter(Number.isFinite);
  const yMax = losses.length ? Math.min(Math.max(...losses), 5) * 1.05 : 2.5;
  chart($("loss-curve"), [
    { points: finite(run.batchLosses), color: "#bbb", width: 1 },
    { points: trainLoss, color: "#1f77b4", dots: true },
    { points: valLoss, color: "#ff7f0e", dots: true },
  ], { xMax, yMin: 0, yMax, yLabel: "grey: batch, blue: train, orange: validation" });
  const acc = run.epochs.map((e) => [e.epoch, e.valAcc]);
  const lowest = acc.length ? Math.min(...acc.map(([, y]) => y)) : 0.5;
  chart($("accuracy-curve"), [{ points: acc, color: "#2ca02c", dots: true }],
    { xMax, yMin: Math.max(0, Math.floor(lowest * 10) / 10 - 0.1), yMax: 1, yLabel: "validation accuracy" });
}

// Blue for negative, white for zero, red for positive: a diverging scale
// centred at 0, `limit` the value drawn fully saturated.
function diverging(value, limit) {
  const t = Math.max(-1, Math.min(1, value / limit));
  const fade = (c) => Math.round(255 - (255 - c) * Math.abs(t));
  return t >= 0 ? [fade(178), fade(24), fade(43)] : [fade(33), fade(102), fade(172)];
}

// The ten templates, 28x28 each, on one colour scale shared by all ten (so
// that they can be compared), scaled to the largest |weight|.
function drawTemplates(templates) {
  const canvas = $("templates");
  const ctx = clear(canvas);
  if (!templates) return;
  // Saturated at the 99th percentile of |w|, so that a few extreme pixels
  // do not wash the rest out.
  const sizes = Float32Array.from(templates, Math.abs).filter(Number.isFinite).sort();
  const limit = sizes[Math.floor(sizes.length * 0.99)] || 1;
  const tile = document.createElement("canvas");
  tile.width = tile.height = 28;
  const tileCtx = tile.getContext("2d");
  const pixels = tileCtx.createImageData(28, 28);
  const scale = 4;
  for (let c = 0; c < 10; c++) {
    for (let p = 0; p < 784; p++) {
      const [r, g, b] = diverging(templates[c * 784 + p], limit);
      pixels.data.set([r, g, b, 255], p * 4);
    }
    tileCtx.putImageData(pixels, 0, 0);
    const x = (c % 5) * (28 * scale + 2);
    const y = Math.floor(c / 5) * (28 * scale + 18);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tile, x, y, 28 * scale, 28 * scale);
    ctx.fillStyle = "#333";
    ctx.font = "12px sans-serif";
    ctx.fillText(CLASS_NAMES[c], x + 2, y + 28 * scale + 13);
  }
  ctx.fillStyle = "#555";
  ctx.fillText(`colour scale: blue -${limit.toExponential(1)} .. white 0 .. red +${limit.toExponential(1)}`,
    0, canvas.height - 4);
}

function drawConfusion(confusion) {
  const canvas = $("confusion");
  const ctx = clear(canvas);
  const cell = 34, left = 80, top = 50;
  let most = 1;
  for (let t = 0; t < 10; t++) for (let p = 0; p < 10; p++) if (t !== p) most = Math.max(most, confusion[t * 10 + p]);
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  for (let t = 0; t < 10; t++) {
    let rowTotal = 0;
    for (let p = 0; p < 10; p++) rowTotal += confusion[t * 10 + p];
    for (let p = 0; p < 10; p++) {
      const n = confusion[t * 10 + p];
      // The diagonal in green by the class's share, the mistakes in red by
      // the largest mistake count.
      const share = t === p ? n / Math.max(rowTotal, 1) : n / most;
      const [r, g, b] = t === p ? [44, 160, 44] : [214, 39, 40];
      const mix = (c) => Math.round(255 - (255 - c) * share);
      ctx.fillStyle = `rgb(${mix(r)},${mix(g)},${mix(b)})`;
      ctx.fillRect(left + p * cell, top + t * cell, cell - 1, cell - 1);
      ctx.fillStyle = share > 0.6 ? "#fff" : "#222";
      ctx.fillText(String(n), left + p * cell + cell / 2, top + t * cell + cell / 2 + 4);
    }
    ctx.fillStyle = "#333";
    ctx.textAlign = "right";
    ctx.fillText(SHORT[t], left - 4, top + t * cell + cell / 2 + 4);
    ctx.save();
    ctx.translate(left + t * cell + cell / 2 + 3, top - 4);
    ctx.rotate(-Math.PI / 4);
    ctx.textAlign = "left";
    ctx.fillText(SHORT[t], 0, 0);
    ctx.restore();
    ctx.textAlign = "center";
  }
}

// A grey image, `values` in [0, 1] or bytes, on a canvas of `scale` x size.
function grey(values, side, scale, max = 255) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = side;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(side, side);
  for (let p = 0; p < side * side; p++) {
    const v = 255 - Math.round((values[p] / max) * 255);
    image.data.set([v, v, v, 255], p * 4);
  }
  ctx.putImageData(image, 0, 0);
  canvas.style.width = canvas.style.height = `${side * scale}px`;
  return canvas;
}

function drawMistakes(predicted) {
  const box = $("mistakes");
  box.replaceChildren();
  const { images, labels } = run.firstBatch;
  let wrong = 0;
  predicted.forEach((p, i) => {
    if (p === labels[i]) return;
    wrong++;
    const figure = document.createElement("figure");
    figure.append(grey(images.subarray(i * 784, (i + 1) * 784), 28, 2));
    const caption = document.createElement("figcaption");
    caption.textContent = `${SHORT[p]} / ${SHORT[labels[i]]}`;
    caption.title = `predicted ${CLASS_NAMES[p]}, truly ${CLASS_NAMES[labels[i]]}`;
    figure.append(caption);
    figure.dataset.index = i;
    figure.onclick = () => worker.postMessage({ type: "classify", index: i });
    box.append(figure);
  });
  $("mistakes-title").textContent =
    `Misclassified: ${wrong} of the first validation batch's ${predicted.length} (predicted / true); click one`;
}

function drawProbabilities({ index, probabilities, resized }) {
  const canvas = $("probabilities");
  const ctx = clear(canvas);
  const truth = run.firstBatch.labels[index];
  const image = grey(resized, 32, 1, 1);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(image, 0, 0, 128, 128);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText(`validation image ${index}`, 0, 145);
  ctx.fillText("as the model sees it:", 0, 159);
  ctx.fillText("resized to 32x32", 0, 173);
  ctx.fillText(`true: ${CLASS_NAMES[truth]}`, 0, 195);
  const left = 220, barMax = canvas.width - left - 40;
  const best = probabilities.indexOf(Math.max(...probabilities));
  for (let c = 0; c < 10; c++) {
    const y = 6 + c * 25;
    ctx.fillStyle = "#333";
    ctx.textAlign = "right";
    ctx.fillText(CLASS_NAMES[c], left - 6, y + 13);
    ctx.textAlign = "left";
    ctx.fillStyle = c === truth ? "#2ca02c" : c === best ? "#d62728" : "#1f77b4";
    ctx.fillRect(left, y, Math.max(1, probabilities[c] * barMax), 18);
    ctx.fillStyle = "#333";
    ctx.fillText(probabilities[c].toFixed(3), left + probabilities[c] * barMax + 4, y + 13);
  }
  $("probabilities-title").textContent = `Class probabilities of validation image ${index}`;
}

function showEpoch(r) {
  if (r.epoch > 0) run.epochs.push({ epoch: r.epoch, trainLoss: r.trainLoss, valLoss: r.valLoss, valAcc: r.valAcc });
  $("epoch").textContent = `epoch ${r.epoch}`;
  $("accuracy").textContent = `validation accuracy ${r.valAcc.toFixed(4)}`;
  $("accuracy").dataset.value = r.valAcc;
  $("val-loss").textContent = `validation loss ${r.valLoss.toFixed(4)}`;
  drawCurves();
  drawTemplates(r.templates);
  drawConfusion(r.confusion);
  drawMistakes(r.predicted);
}

function reset() {
  Object.assign(run, { started: false, running: false, batchLosses: [], epochs: [], stepsTaken: 0 });
  delete document.body.dataset.stopped;
  delete document.body.dataset.done;
  $("epoch").textContent = "epoch -";
  $("accuracy").textContent = "validation accuracy -";
  delete $("accuracy").dataset.value;
  $("val-loss").textContent = "validation loss -";
  drawCurves();
  drawTemplates(null);
  drawConfusion(new Uint32Array(100));
  $("mistakes").replaceChildren();
  $("mistakes-title").textContent = "Misclassified, first validation batch (predicted / true); click one";
  clear($("probabilities"));
  $("probabilities-title").textContent = "Class probabilities";
}

// --- the worker's reports -------------------------------------------------

// Reports of steps come faster than frames: draw at most once a frame, so
// that drawing does not take the core the worker trains on.
let pendingTemplates = null;
let drawScheduled = false;
function drawSoon() {
  if (drawScheduled) return;
  drawScheduled = true;
  requestAnimationFrame(() => {
    drawScheduled = false;
    drawCurves();
    if (pendingTemplates) drawTemplates(pendingTemplates);
    pendingTemplates = null;
  });
}

const reports = {
  status: ({ text }) => setStatus(text),
  data({ train, validation, images, labels, seconds }) {
    run.firstBatch = { images, labels };
    setStatus(`data: ${train} training and ${validation} validation images, loaded in ${seconds.toFixed(1)} s`);
    document.body.dataset.ready = "true";
    updateControls();
  },
  started({ templates }) {
    drawTemplates(templates);
  },
  steps({ losses, batch, batches, templates }) {
    run.batchesPerEpoch = batches;
    for (const loss of losses) {
      run.stepsTaken++;
      run.batchLosses.push([run.stepsTaken / batches, loss]);
    }
    const epoch = run.epochs.length + 1;
    setStatus(`training: epoch ${epoch}, batch ${batch + 1} of ${batches}, loss ${losses.at(-1)?.toFixed(4)}`);
    if (templates) pendingTemplates = templates;
    drawSoon();
  },
  epoch: (r) => showEpoch(r),
  done({ seconds }) {
    run.running = false;
    setStatus(`done: ${run.epochs.length} epochs in ${seconds.toFixed(2)} s`);
    document.body.dataset.trainSeconds = seconds;
    document.body.dataset.done = run.epochs.length;
    updateControls();
  },
  paused() {
    run.running = false;
    setStatus(`paused after ${run.stepsTaken} steps`);
    updateControls();
  },
  // The module's message names the batch, the epoch and what to change.
  diverged({ message, templates }) {
    run.running = false;
    setStatus(`${message}; Reset to start again`, true);
    document.body.dataset.stopped = "true";
    drawTemplates(templates);
    updateControls();
  },
  model({ bytes }) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    link.download = "model.softreg";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    setStatus(`saved model.softreg (${bytes.length} bytes): softreg evaluate --model model.softreg`);
  },
  loaded(r) {
    reset();
    run.started = true;
    showEpoch(r);
    setStatus(`loaded ${r.name}: validation accuracy ${r.valAcc.toFixed(4)}; Continue trains it further`);
    updateControls();
  },
  probabilities: (r) => drawProbabilities(r),
  error({ message }) {
    run.running = false;
    setStatus(message, true);
    updateControls();
  },
};

worker.onmessage = ({ data }) => reports[data.type](data);
worker.onerror = (e) => setStatus(`the worker failed: ${e.message}`, true);

// --- controls --------------------------------------------------------------

$("start").onclick = () => {
  if (!$("controls").reportValidity()) return;
  const fresh = !run.started;
  run.started = run.running = true;
  updateControls();
  worker.postMessage({ type: "start", fresh, ...settings() });
};
$("pause").onclick = () => worker.postMessage({ type: "pause" });
$("reset").onclick = () => {
  worker.postMessage({ type: "reset" });
  reset();
  setStatus("reset");
  updateControls();
};
$("save").onclick = () => worker.postMessage({ type: "save" });
$("load").onchange = async () => {
  const file = $("load").files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  $("load").value = "";
  worker.postMessage({ type: "loadModel", bytes, name: file.name, ...settings() });
};
$("epochs").oninput = drawCurves;

reset();
updateControls();
worker.postMessage({ type: "init" });
