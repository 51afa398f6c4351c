#!/usr/bin/env bash
# Minimal CPU libtorch for tch 0.26.0 (torch 2.13.0), as in shared/notes/libtorch.md.
# Idempotent: a stamp file records the exact pinned set; offline once done.
set -euo pipefail
VENV=${1:-.venv-torch}
PY=${PYTHON:-python3}
PINS="torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85"
STAMP="$VENV/.rfpga-pins"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ] && [ -f "$VENV/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so" ]; then
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python 3.11 required, found %s" % sys.version' 
rm -rf "$VENV"
"$PY" -m venv "$VENV"
# --no-deps: a CPU-only program needs only these three (the full CUDA stack is 4.7 GB).
"$VENV/bin/pip" install --quiet --no-cache-dir --no-deps $PINS
echo "$PINS" > "$STAMP"
echo "libtorch ready in $VENV/lib/python3.11/site-packages/torch"
