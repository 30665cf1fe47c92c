#!/usr/bin/env bash
# Runs every Sinter fuzz target for SECONDS each (default 60), one at a time, each in one
# libFuzzer process (no -jobs/-fork: one core).
#   fuzz/run.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz (nightly) when it is missing. Crashes land in fuzz/artifacts/<target>/;
# new coverage in fuzz/corpus/<target>/ (commit only small, interesting files).
# SANITIZER=address for ASan (slower to build and run); the default `none` finds panics,
# overflow and debug assertions, which is what these targets check.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(ir_text onnx_import optimize jit_diff)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
sanitizer="${SANITIZER:-none}"
cargo +nightly fuzz build -s "$sanitizer" -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t: ${secs}s"
    start=$(date +%s)
    cargo +nightly fuzz run -s "$sanitizer" -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$t/"
    echo "== $t: ran clean for $(( $(date +%s) - start ))s"
done
