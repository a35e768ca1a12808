#!/bin/sh
# Runs one fuzz target the way docs/reliability.md reports it:
#   fuzz/run.sh TARGET [SECONDS [LIBFUZZER FLAGS...]]   (default 1800 s)
# at the lowest priority, with the seeds of make_seeds.py, and logs to
# fuzz/logs/TARGET.log. Crashing inputs land in fuzz/artifacts/TARGET/.
set -eu
target=$1
seconds=${2:-1800}
shift; [ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
case $target in
    model_file) max_len=42000 ;;     # a 1024x10 model file is 41,032 bytes
    idx_images | idx_gz | png_predict) max_len=8192 ;;
    *) max_len=4096 ;;
esac
# The CLI's readers print progress to stderr on every input: keep it out of
# the log (libFuzzer's own report still gets through).
case $target in
    idx_gz | png_predict) quiet=-close_fd_mask=2 ;;
    *) quiet= ;;
esac
[ -d "fuzz/corpus/$target" ] || python3 fuzz/make_seeds.py
mkdir -p fuzz/logs
# No target-cpu: the kernels pick their SIMD level at run time, as in the
# shipped binary (SOFTREG_ISA=avx2|baseline fuzzes another level).
exec nice -n 19 cargo +nightly fuzz run "$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 $quiet "$@" \
    >"fuzz/logs/$target.log" 2>&1
