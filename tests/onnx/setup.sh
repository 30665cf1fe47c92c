#!/usr/bin/env bash
# Regenerates the ONNX fixtures: creates tests/onnx/.venv, installs torch, onnx and
# onnxruntime from PyPI into it, and runs make_fixtures.py. CI does not run this: the
# fixtures it writes are committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# The CPU wheel index is not reachable from every machine: plain PyPI torch (with its CUDA
# libraries) works, just larger.
"$venv/bin/pip" install --quiet numpy onnx onnxruntime torch
case " $* " in *" --large "*) "$venv/bin/pip" install --quiet torchvision ;; esac
"$venv/bin/python" "$here/make_fixtures.py" "$@"
