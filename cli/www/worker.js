// The lab's Web Worker: fetches and decompresses the data, runs the core
// (softreg_lab.wasm) and reports to the page, so that training never
// freezes the page.
//
// Training goes a few steps per call of the module, and between calls the
// worker returns to its event loop, where it hears "pause" and "reset".

const FILES = [
  "train-images-idx3-ubyte",
  "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte",
  "t10k-labels-idx1-ubyte",
];
// Steps per call of the module: about 15 ms of work on the full data, short
// enough for a pause to land at once, long enough that the messages between
// calls cost little.
const STEPS_PER_CALL = 16;
// The first validation batch, whose images the page shows.
const FIRST_BATCH = 256;

let lab; // the module's exports
let running = false;
let epochsWanted = 0;

const fail = (message) => postMessage({ type: "error", message });

function memory(Type, ptr, len) {
  // A fresh view each time: the memory's buffer is replaced when it grows.
  return new Type(lab.memory.buffer, ptr, len);
}

function lastError() {
  const bytes = memory(Uint8Array, lab.lab_error(), lab.lab_error_len());
  return new TextDecoder().decode(bytes);
}

// Copies `bytes` into the module and calls `then` on them; throws on error.
function hand(bytes, then) {
  const ptr = lab.lab_inbox(bytes.length);
  memory(Uint8Array, ptr, bytes.length).set(bytes);
  const result = then();
  if (result < 0) throw new Error(lastError());
  return result;
}

// The bytes of one data file: gunzipped in the browser when they are gzip
// (the magic 1f 8b), taken as they are when the file is raw IDX.
async function fetchIdx(name) {
  const response = await fetch(`data/${name}`);
  if (!response.ok) throw new Error(`data/${name}: ${response.status} ${await response.text()}`);
  let bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  return bytes;
}

async function loadData() {
  const started = performance.now();
  const counts = [];
  for (const [i, name] of FILES.entries()) {
    postMessage({ type: "status", text: `loading ${name}` });
    const bytes = await fetchIdx(name);
    try {
      counts.push(hand(bytes, () => lab.lab_load(i)));
    } catch (e) {
      throw new Error(`${name}: ${e.message}`);
    }
  }
  const n = Math.min(FIRST_BATCH, counts[2]);
  const images = memory(Uint8Array, lab.lab_validation_image(0), n * 784).slice();
  const labels = memory(Uint8Array, lab.lab_validation_labels(), n).slice();
  postMessage({
    type: "data",
    train: counts[0],
    validation: counts[2],
    images,
    labels,
    seconds: (performance.now() - started) / 1000,
  });
}

function templates() {
  const len = lab.lab_templates_len();
  return len ? memory(Float32Array, lab.lab_templates(), len).slice() : null;
}

function report() {
  const [epoch, trainLoss, valLoss, valAcc] = memory(Float64Array, lab.lab_report(), 4);
  return {
    epoch,
    trainLoss,
    valLoss,
    valAcc,
    confusion: memory(Uint32Array, lab.lab_confusion(), 100).slice(),
    predicted: memory(Uint8Array, lab.lab_predicted(), lab.lab_predicted_len()).slice(),
    templates: templates(),
  };
}

// Yields to the event loop at once (a MessageChannel message, not a
// setTimeout, which browsers clamp to 4 ms).
const channel = new MessageChannel();
const yieldToEvents = () =>
  new Promise((resolve) => {
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(null);
  });

async function train() {
  const started = performance.now();
  let lastDrawn = 0;
  while (running) {
    const code = lab.lab_steps(STEPS_PER_CALL);
    const losses = memory(Float32Array, lab.lab_losses(), lab.lab_losses_len()).slice();
    const [batch, batches] = memory(Uint32Array, lab.lab_position(), 2);
    if (code < 0) {
      running = false;
      // The steps before the one that stopped still go on the curve.
      if (losses.length) postMessage({ type: "steps", losses, batch, batches, templates: null });
      postMessage({ type: "diverged", message: lastError(), templates: templates() });
      return;
    }
    const now = performance.now();
    // Templates mid-epoch a few times a second: each is 31 KB to copy.
    const drawTemplates = now - lastDrawn > 250;
    if (drawTemplates) lastDrawn = now;
    postMessage({ type: "steps", losses, batch, batches, templates: drawTemplates ? templates() : null });
    if (code === 1) {
      const r = report();
      postMessage({ type: "epoch", ...r, seconds: (now - started) / 1000 });
      if (r.epoch >= epochsWanted) {
        running = false;
        postMessage({ type: "done", seconds: (performance.now() - started) / 1000 });
        return;
      }
    }
    await yieldToEvents();
  }
  postMessage({ type: "paused" });
}

const handlers = {
  async init() {
    const { instance } = await WebAssembly.instantiateStreaming(fetch("softreg_lab.wasm"), {});
    lab = instance.exports;
    await loadData();
  },
  start({ lr, batchSize, seed, softmax, epochs, fresh }) {
    if (fresh && lab.lab_start(lr, batchSize, seed, softmax) < 0) throw new Error(lastError());
    if (fresh) postMessage({ type: "started", templates: templates() });
    epochsWanted = epochs;
    if (!running) {
      running = true;
      train();
    }
  },
  pause() {
    running = false;
  },
  reset() {
    running = false;
    lab.lab_reset();
  },
  classify({ index }) {
    if (lab.lab_classify(index) < 0) throw new Error(lastError());
    postMessage({
      type: "probabilities",
      index,
      probabilities: memory(Float32Array, lab.lab_probabilities(), 10).slice(),
      resized: memory(Float32Array, lab.lab_resized(), 1024).slice(),
    });
  },
  save() {
    const len = lab.lab_save_model();
    if (len < 0) throw new Error(lastError());
    postMessage({ type: "model", bytes: memory(Uint8Array, lab.lab_model_file(), len).slice() });
  },
  loadModel({ bytes, name, lr, batchSize, seed, softmax }) {
    running = false;
    try {
      hand(bytes, () => lab.lab_load_model(lr, batchSize, seed, softmax));
    } catch (e) {
      throw new Error(`${name}: ${e.message}`);
    }
    postMessage({ type: "loaded", name, ...report() });
  },
};

onmessage = async ({ data }) => {
  try {
    await handlers[data.type](data);
  } catch (e) {
    running = false;
    fail(e.message || String(e));
  }
};
