// End-to-end test of the softreg lab in headless Chromium.
//
// Starts `softreg lab` on the small fixtures, trains two epochs in the page,
// and checks what a learner sees against the command line: the accuracy
// shown is the one `softreg train --threads 1 --isa baseline` reports for
// the same recipe, the model the page saves is the one that run writes, bit
// for bit, and `softreg evaluate` accepts it; the curves, templates,
// confusion matrix and probabilities were drawn (their canvases are not
// blank). With the naive softmax (the chapter's exercise 1), a learning
// rate of 10 stops at the batch where the command line's run stops, with
// one line saying why, and after Reset a naive run at 0.1 trains like the
// command line's naive run (and the stable one). Saves a screenshot.
//
//   SOFTREG_BIN=target/release/softreg node lab/e2e/lab.test.mjs [screenshot.png]
//
// Environment: SOFTREG_BIN (default target/release/softreg, else
// target/debug/softreg), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { strict as assert } from "node:assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const softreg =
  process.env.SOFTREG_BIN ??
  ["target/release/softreg", "target/debug/softreg"].map((p) => path.join(root, p)).find(fs.existsSync);
assert.ok(softreg && fs.existsSync(softreg), "build softreg first (cargo build --release), or set SOFTREG_BIN");
const screenshot = path.resolve(process.argv[2] ?? path.join(root, "target/lab-e2e.png"));
const EPOCHS = 2;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "softreg-lab-e2e-"));

// The fixtures under the dataset's names, for `softreg train` and
// `evaluate`; the lab reads the fixtures directory as it is.
const fixtures = path.join(root, "fixtures");
const data = path.join(work, "data");
fs.mkdirSync(data);
for (const [from, to] of [
  ["train-2048-images-idx3-ubyte", "train-images-idx3-ubyte"],
  ["train-2048-labels-idx1-ubyte", "train-labels-idx1-ubyte"],
  ["t10k-256-images-idx3-ubyte", "t10k-images-idx3-ubyte"],
  ["t10k-256-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"],
]) {
  fs.copyFileSync(path.join(fixtures, from), path.join(data, to));
}

// The native run the page must agree with.
const nativeOut = path.join(work, "native");
const nativeJson = JSON.parse(
  execFileSync(softreg, ["train", "--offline", "--data-dir", data, "--epochs", String(EPOCHS),
    "--threads", "1", "--isa", "baseline", "--out", nativeOut, "--json"], { stdio: ["ignore", "pipe", "ignore"] })
    .toString().trim().split("\n").at(-1));

// `softreg lab` on a free port; its first line names the address.
const server = spawn(softreg, ["lab", "--port", "0", "--offline", "--data-dir", fixtures],
  { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (chunk) => {
    out += chunk;
    const match = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
    if (match) resolve(match[0]);
  });
  server.on("exit", (code) => reject(new Error(`softreg lab exited with ${code}: ${out}`)));
});

const context = await chromium.launchPersistentContext(path.join(work, "profile"), {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 1100 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));

  await page.goto(url);
  await page.waitForSelector("body[data-ready]", { timeout: 30_000 });
  // A blank canvas is all white: count the pixels that are not.
  const inked = (id) => page.evaluate((id) => {
    const c = document.getElementById(id);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
    return n;
  }, id);
  const templatesBefore = await inked("templates");

  await page.fill("#epochs", String(EPOCHS));
  await page.click("#start");
  await page.waitForSelector(`body[data-done="${EPOCHS}"]`, { timeout: 120_000 });

  const shown = await page.textContent("#accuracy");
  const accuracy = Number(await page.getAttribute("#accuracy", "data-value"));
  console.log(`page: ${shown}; native: val_acc ${nativeJson.val_acc}`);
  assert.match(shown, /^validation accuracy 0\.\d{4}$/);
  assert.equal(accuracy, nativeJson.val_acc, "the page's accuracy is the native run's");
  assert.ok(accuracy > 0.5, `accuracy ${accuracy} after ${EPOCHS} epochs`);

  assert.equal(templatesBefore, 0, "no templates before a run");
  for (const id of ["loss-curve", "accuracy-curve", "templates", "confusion"]) {
    const n = await inked(id);
    assert.ok(n > 2000, `${id}: only ${n} pixels drawn`);
  }
  // Coloured template pixels, not just the captions: red or blue.
  const coloured = await page.evaluate(() => {
    const c = document.getElementById("templates");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 2]) > 40) n++;
    return n;
  });
  assert.ok(coloured > 5000, `templates: ${coloured} coloured pixels`);

  // Mistakes of the first validation batch, and one's probabilities.
  const mistakes = await page.locator("#mistakes figure").count();
  const wrong = Math.round((1 - accuracy) * 256);
  console.log(`misclassified in the first batch: ${mistakes} (the whole set of 256: ${wrong})`);
  assert.equal(mistakes, wrong, "the fixtures' validation set is the first batch");
  await page.locator("#mistakes figure").first().click();
  await page.waitForFunction(() => document.getElementById("probabilities-title").textContent.includes("image"));
  assert.ok((await inked("probabilities")) > 1000, "probabilities drawn");
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // The saved model is the native run's, and `softreg evaluate` reads it.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
  const saved = path.join(work, "model.softreg");
  await download.saveAs(saved);
  const native = fs.readFileSync(path.join(nativeOut, "model.softreg"));
  assert.ok(fs.readFileSync(saved).equals(native), "the page's model.softreg is the native run's, bit for bit");
  const evaluated = execFileSync(softreg, ["evaluate", "--offline", "--data-dir", data, "--model", saved]).toString();
  assert.match(evaluated, new RegExp(`accuracy: ${accuracy.toFixed(4)}`));

  // Loading it back shows the same accuracy.
  await page.click("#reset");
  await page.setInputFiles("#load", saved);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("loaded"));
  assert.equal(Number(await page.getAttribute("#accuracy", "data-value")), accuracy);
 
  // Pause and continue: an epoch of 256 batches of 8, paused after the
  // first calls of the module (16 steps each) and taken up again, ends where the
  // command line's uninterrupted epoch does.
  const pausedRun = JSON.parse(
    execFileSync(softreg, ["train", "--offline", "--data-dir", data, "--epochs", "1", "--batch-size", "8",
      "--seed", "3", "--threads", "1", "--isa", "baseline", "--out", path.join(work, "native-32"), "--json"],
    { stdio: ["ignore", "pipe", "ignore"] }).toString().trim().split("\n").at(-1));
  await page.click("#reset");
  await page.fill("#batch-size", "8");
  await page.fill("#epochs", "1");
  await page.fill("#seed", "3");
  // Both in one task of the page: the epoch takes milliseconds here, so
  // "pause" must be on its way before the worker's first call returns.
  await page.evaluate(() => {
    document.getElementById("start").click();
    document.getElementById("pause").click();
  });
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("paused"));
  const pausedAt = await page.textContent("#status");
  console.log(`${pausedAt}; continuing`);
  assert.match(pausedAt, /^paused after (\d+) steps$/);
  assert.ok(Number(pausedAt.match(/\d+/)[0]) < 256, "paused inside the epoch");
  await page.click("#start");
  await page.waitForSelector('body[data-done="1"]', { timeout: 60_000 });
  const resumed = Number(await page.getAttribute("#accuracy", "data-value"));
  assert.equal(resumed, pausedRun.val_acc, "a paused and continued epoch is the uninterrupted one");

  // The naive softmax at lr 10: exp overflows within the first batches;
  // the page stops where `softreg train --softmax naive` stops.
  const naive = ["train", "--offline", "--data-dir", data, "--softmax", "naive", "--epochs", String(EPOCHS),
    "--threads", "1", "--isa", "baseline"];
  const overflowed = spawnSync(softreg, [...naive, "--lr", "10", "--out", path.join(work, "naive-10")],
    { encoding: "utf8" });
  assert.notEqual(overflowed.status, 0, "softreg train --softmax naive --lr 10 stops");
  const [, nativeBatch, nativeLoss] = overflowed.stderr.match(/the loss of batch (\d+) was (\S+):/);
  await page.click("#reset");
  await page.fill("#batch-size", "256");
  await page.fill("#seed", "0");
  await page.fill("#epochs", String(EPOCHS));
  await page.fill("#lr", "10");
  await page.selectOption("#softmax", "1");
  await page.click("#start");
  await page.waitForSelector("body[data-stopped]", { timeout: 60_000 });
  const stopped = await page.textContent("#status");
  console.log(`naive, lr 10: ${stopped} (native: batch ${nativeBatch}, ${nativeLoss})`);
  assert.equal(stopped, `stopped: the loss of batch ${nativeBatch} in epoch 1 is ${nativeLoss} ` +
    "(naive softmax: exp overflows or underflows; choose stable); Reset to start again");
  assert.equal(await page.getAttribute("#status", "class"), "error");
  assert.ok(await page.isEnabled("#reset"), "Reset after a stop");
  assert.ok(await page.isDisabled("#pause"), "no run to pause after a stop");
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot.replace(/(\.png)?$/, "-naive-stopped.png"), fullPage: true });

  // After Reset, the naive softmax at lr 0.1 trains as the command line's
  // naive run does, to the bit, and ends at the stable run's accuracy.
  const naiveRun = JSON.parse(execFileSync(softreg, [...naive, "--out", path.join(work, "naive-0.1"), "--json"],
    { stdio: ["ignore", "pipe", "ignore"] }).toString().trim().split("\n").at(-1));
  await page.click("#reset");
  await page.fill("#lr", "0.1");
  assert.equal(await page.inputValue("#softmax"), "1", "Reset keeps the softmax chosen");
  await page.click("#start");
  await page.waitForSelector(`body[data-done="${EPOCHS}"]`, { timeout: 120_000 });
  const naiveAccuracy = Number(await page.getAttribute("#accuracy", "data-value"));
  console.log(`naive, lr 0.1: validation accuracy ${naiveAccuracy}; native naive ${naiveRun.val_acc}, ` +
    `native stable ${nativeJson.val_acc}`);
  assert.equal(naiveAccuracy, naiveRun.val_acc, "the page's naive run is the native naive run");
  assert.ok(Math.abs(naiveAccuracy - nativeJson.val_acc) <= 0.01, "at lr 0.1 naive trains like stable");
  const [naiveDownload] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
  const naiveSaved = path.join(work, "naive.softreg");
  await naiveDownload.saveAs(naiveSaved);
  assert.ok(fs.readFileSync(naiveSaved).equals(fs.readFileSync(path.join(work, "naive-0.1", "model.softreg"))),
    "the page's naive model.softreg is the native naive run's, bit for bit");

  assert.deepEqual(problems, []);
  console.log("lab e2e: ok");
} finally {
  await context.close();
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
