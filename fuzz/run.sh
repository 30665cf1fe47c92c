#!/usr/bin/env bash
# Runs every Sinter fuzz target for SECONDS each (default 60), one at a time, each in one
# libFuzzer process (no -jobs/-fork: one core).
#   fuzz/run.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz (nightly) when it is missing. Crashes land in fuzz/artifacts/<target>/;
# new coverage in fuzz/work/<target>/ (ignored by git), seeded from the committed
# fuzz/corpus/<target>/ (commit there only small, interesting files: each becomes a test).
# A target that finds a crash does not stop the others; the exit status is 1 if any did.
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
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "work/$t" "artifacts/$t"
    echo "== $t: ${secs}s"
    start=$(date +%s)
    if cargo +nightly fuzz run -s "$sanitizer" -O "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$t/"; then
        echo "== $t: ran clean for $(( $(date +%s) - start ))s"
    else
        echo "== $t: FOUND A CRASH after $(( $(date +%s) - start ))s (see artifacts/$t/)"
        status=1
    fi
done
exit "$status"
