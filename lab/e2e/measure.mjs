// Measures the lab in headless Chromium (a benchmark, not a test): the
// default recipe (10 epochs, batch 256, lr 0.1, seed 0) on the full data,
// the seconds the page reports for training, the final accuracy, the bytes
// of the page and module transferred, and the model file it saves.
//
//   node lab/e2e/measure.mjs DATA_DIR [model.softreg] [screenshot.png]
//
// Compare with `softreg train --data-dir DATA_DIR --threads 1 --isa baseline`
// (docs/performance.md has the figures and how they were taken).

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const [dataDir, modelOut, screenshot] = process.argv.slice(2);
if (!dataDir) throw new Error("usage: node lab/e2e/measure.mjs DATA_DIR [model.softreg] [screenshot.png]");
const softreg = process.env.SOFTREG_BIN ?? path.join(root, "target/release/softreg");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "softreg-lab-measure-"));

const server = spawn(softreg, ["lab", "--port", "0", "--offline", "--data-dir", dataDir],
  { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (chunk) => {
    out += chunk;
    const match = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
    if (match) resolve(match[0]);
  });
  server.on("exit", (code) => reject(new Error(`softreg lab exited with ${code}`)));
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
  const bytes = {};
  page.on("response", async (r) => {
    const name = new URL(r.url()).pathname;
    bytes[name] = Number((await r.allHeaders())["content-length"] ?? 0);
  });
  await page.goto(url);
  await page.waitForSelector("body[data-ready]", { timeout: 300_000 });
  await page.click("#start");
  await page.waitForSelector('body[data-done="10"]', { timeout: 900_000 });
  const seconds = Number(await page.getAttribute("body", "data-train-seconds"));
  const accuracy = await page.getAttribute("#accuracy", "data-value");
  const page_bytes = Object.entries(bytes).filter(([p]) => !p.startsWith("/data/"))
    .reduce((sum, [, n]) => sum + n, 0);
  console.log(JSON.stringify({ train_seconds: seconds, val_acc: Number(accuracy), page_bytes, bytes }));
  if (modelOut) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
    await download.saveAs(modelOut);
  }
  if (screenshot) {
    await page.locator("#mistakes figure").nth(1).click();
    await page.waitForFunction(() => document.getElementById("probabilities-title").textContent.includes("image"));
    await page.screenshot({ path: screenshot, fullPage: true });
  }
} finally {
  await context.close();
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
