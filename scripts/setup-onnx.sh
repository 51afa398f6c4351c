#!/usr/bin/env bash
# The Python packages the ONNX/QONNX tests and make targets check rfpga's exports with
# (onnx, onnxruntime, qonnx and numpy, pinned), in their own venv; never used by the rfpga
# binary. Idempotent: a stamp records the exact pinned set; offline once done.
set -euo pipefail
VENV=${1:-.venv-onnx}
PY=${PYTHON:-python3}
PINS="numpy==1.26.4 onnx==1.17.0 onnxruntime==1.20.1 protobuf==5.29.3"
STAMP="$VENV/.rfpga-pins"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python 3.11 required, found %s" % sys.version'
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --no-cache-dir $PINS
"$VENV/bin/python" -c 'import onnx, onnxruntime, numpy'
echo "$PINS" > "$STAMP"
echo "onnx, onnxruntime ready in $VENV"
