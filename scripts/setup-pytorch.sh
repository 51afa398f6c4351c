#!/usr/bin/env bash
# A full PyTorch 2.13.0 (the version tch 0.26 pins) with numpy and safetensors in .venv-pytorch,
# for `make bench-train` (PyTorch eager against rfpga) and for rewriting the PyTorch fixture of
# the import test (crates/rfpga-interop/tests/fixtures/resnet8/make_fixture.py). ~4.7 GB with
# its CUDA libraries; never needed by `make test`. Idempotent: a stamp records the pins.
set -euo pipefail
VENV=${1:-.venv-pytorch}
PIN="torch==2.13.0 numpy==2.4.6 safetensors==0.5.3"
if [ -f "$VENV/.rfpga-pins" ] && [ "$(cat "$VENV/.rfpga-pins")" = "$PIN" ]; then
  exit 0
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --no-cache-dir $PIN
echo "$PIN" > "$VENV/.rfpga-pins"
