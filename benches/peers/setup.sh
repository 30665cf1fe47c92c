#!/usr/bin/env bash
# Makes benches/peers/.venv with torch, torchvision, onnx and onnxruntime (plain PyPI: the
# CPU-only torch index is not reachable from every machine, so this pulls torch with its CUDA
# libraries, a few GB), and builds the release `sinter` binary that run.py times.
# PYTHON=/path/to/python skips the venv and checks that interpreter has the packages instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
else
  venv="$here/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet numpy onnx onnxruntime torch torchvision
  py="$venv/bin/python"
fi
"$py" -c "import numpy, onnx, onnxruntime, torch, torchvision; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__, '| onnx', onnx.__version__)"
(cd "$root" && cargo build --release -p sinter)
echo "now: $py benches/peers/run.py   (--help for the flags)"
