#!/usr/bin/env bash
# Builds the lab's WebAssembly module and writes it to cli/www/, where
# `softreg lab` embeds it (committed, so that a fresh clone needs no wasm
# toolchain to open the page).
#
#   lab/build.sh          build and write cli/www/softreg_lab.wasm
#   lab/build.sh --check  build and fail if the committed module differs
#
# The build is reproducible: the paths of this clone and of Cargo's registry
# are remapped out of the module (panic locations name files), and Cargo
# hashes a workspace member's path relative to the workspace, so any clone
# built with the same Rust toolchain gets the same bytes. A new toolchain
# may change them: rebuild and commit the module with it.
set -euo pipefail
lab=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$lab")
committed="$root/cli/www/softreg_lab.wasm"
cargo_home=${CARGO_HOME:-$HOME/.cargo}

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
# SIMD128 gives the core's portable level (`wide`) 128-bit vectors; every
# current browser runs it.
export RUSTFLAGS="-C target-feature=+simd128 --remap-path-prefix=$root=/softreg --remap-path-prefix=$cargo_home=/cargo"
cd "$root"
cargo build -p softreg-lab --profile wasm --target wasm32-unknown-unknown --locked
built="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm/softreg_lab.wasm"

case "${1:-}" in
--check)
    if ! cmp -s "$built" "$committed"; then
        echo "lab/build.sh --check: $committed is not what lab/ builds; run lab/build.sh and commit it" >&2
        exit 1
    fi
    echo "lab/build.sh --check: cli/www/softreg_lab.wasm is up to date ($(wc -c <"$committed") bytes)"
    ;;
"")
    cp "$built" "$committed"
    echo "wrote $committed ($(wc -c <"$committed") bytes)"
    ;;
*)
    echo "usage: lab/build.sh [--check]" >&2
    exit 2
    ;;
esac
