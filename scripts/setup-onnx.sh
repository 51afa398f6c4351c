#!/usr/bin/env bash
# The Python packages the ONNX/QONNX tests and make targets check rfpga's exports with
# (onnx, onnxruntime, qonnx, hls4ml and numpy, and every package they pull in, pinned), in their own
# venv; never used by the rfpga binary. Idempotent: a stamp records the exact pinned set;
# offline once done. (qonnx 0.4.0 pins protobuf 3.20.3.)
set -euo pipefail
VENV=${1:-.venv-onnx}
PY=${PYTHON:-python3}
PINS="numpy==1.26.4 onnx==1.17.0 onnxruntime==1.20.1 qonnx==0.4.0 protobuf==3.20.3 attrs==26.1.0 bitstring==5.0.0
clize==5.0.2 coloredlogs==15.0.1 docutils==0.23 flatbuffers==25.12.19 humanfriendly==10.0 mpmath==1.3.0 od==2.0.2
packaging==26.4 sigtools==4.0.1 sympy==1.14.0 tibs==2.0.2 toposort==1.10
hls4ml==1.3.0 h5py==3.16.0 PyYAML==6.0.4 pyDigitalWaveTools==1.1 quantizers==1.2.2"
STAMP="$VENV/.rfpga-pins"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python 3.11 required, found %s" % sys.version'
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --no-cache-dir --no-deps $PINS
"$VENV/bin/python" -c 'import onnx, onnxruntime, numpy, qonnx, hls4ml'
echo "$PINS" > "$STAMP"
echo "onnx, onnxruntime ready in $VENV"
