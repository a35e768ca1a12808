// Runs a wasm32-wasip1 program under node's WASI, for cargo:
//
//   CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings .ci/wasi-run.mjs"
//
// cargo calls it as `node .ci/wasi-run.mjs program.wasm [args...]`, from the
// package's directory. The program sees the same arguments and environment,
// and the working directory's tree under its own absolute path: the tests
// find the fixtures through CARGO_MANIFEST_DIR, an absolute host path.
// Nothing outside that tree is reachable.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";

const [program, ...args] = process.argv.slice(2);
if (!program) {
    console.error("usage: node wasi-run.mjs program.wasm [args...]");
    process.exit(2);
}

const cwd = process.cwd();
const wasi = new WASI({
    version: "preview1",
    args: [program, ...args],
    env: { ...process.env, PWD: cwd },
    preopens: { [cwd]: cwd },
    returnOnExit: true,
});

const module = await WebAssembly.compile(await readFile(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
// A Rust panic is `abort` on this target: a trap, which throws here and
// makes node exit non-zero with the message on stderr.
process.exitCode = wasi.start(instance);
