#!/usr/bin/env bash
# `make bench-qat`: QAT training images/s of ResNet-20 (weights, activations and input at
# FORMAT, clipped gradient) with rfpga's fused fake-quantization kernel against libtorch's
# tensor ops for it (--native-fake-quant), and float training as the ceiling; ROUNDS
# alternating runs of each in this one command, then medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
STEPS=${STEPS:-20}
FORMAT=${FORMAT:-ap_fixed<8,3,AP_RND,AP_SAT>}
out=$(mktemp)
for r in $(seq "$ROUNDS"); do
  $R bench-train --threads "$THREADS" --steps "$STEPS" --qat "$FORMAT" --ste clipped | tee -a "$out"
  $R bench-train --threads "$THREADS" --steps "$STEPS" --qat "$FORMAT" --ste clipped --native-fake-quant | tee -a "$out"
  $R bench-train --threads "$THREADS" --steps "$STEPS" | tee -a "$out"
done
python3 - "$out" "$FORMAT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = {k: statistics.median(r["images_per_s"] for r in rows if r["impl"] == k) for k in ("tch-qat", "tch-qat-native-fq", "tch")}
for k, v in med.items():
    print(f"{k:<18} median {v:.1f} images/s")
print(f"QAT at {sys.argv[2]}: fused / tensor ops = {med['tch-qat'] / med['tch-qat-native-fq']:.2f}; fused QAT / float = {med['tch-qat'] / med['tch']:.2f}")
PY
rm -f "$out"
