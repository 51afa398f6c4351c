#!/usr/bin/env bash
# `make bench-sim`: the exact simulator against onnxruntime's float inference on the same
# ResNet-20 (same weights before quantization), the same test images and the same threads, in
# one run; plus a saturating accumulator. Prints a table and the ratios.
#
# The network: BENCH_RUN, a float ResNet-20 (trained here on first use: 2 epochs on 10,000
# images; speed does not depend on accuracy, only the weight magnitudes matter to which exact
# kernel the formats allow). From it: frozen <8,3>, <16,6> and <8,3> with the accumulator
# ap_fixed<14,4,AP_TRN,AP_SAT> (every tap truncated and saturated), its ONNX export, and the
# normalized images rfpga feeds it (for onnxruntime).
set -euo pipefail
RFPGA=${RFPGA:-target/release/rfpga}
DATA_DIR=${DATA_DIR:-data/cifar-10-batches-bin}
RUN=${BENCH_RUN:-runs/bench/r20-float}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-10000}
REPEATS=${REPEATS:-3}
PY=${ONNX_PY:-.venv-onnx/bin/python}
OUT=$RUN-bench

if [ ! -f "$RUN/summary.json" ]; then
  if [ -f "$RUN/checkpoint.safetensors" ]; then
    "$RFPGA" train --resume "$RUN" --threads "$THREADS" --quiet
  else
    "$RFPGA" train --depth 20 --epochs 2 --train-images 10000 --seed 0 --data-dir "$DATA_DIR" \
      --threads "$THREADS" --quiet --out "$RUN"
  fi
fi
mkdir -p "$OUT"
q83='ap_fixed<8,3,AP_RND,AP_SAT>'
q166='ap_fixed<16,6,AP_RND,AP_SAT>'
freeze() { # name, extra quantize flags...
  local dir=$OUT/$1; shift
  [ -f "$dir/frozen.json" ] || "$RFPGA" freeze "$RUN" --calib-images 0 --data-dir "$DATA_DIR" --out "$dir" "$@" > /dev/null
}
freeze q83 --weight-format "$q83" --act-format "$q83" --input-format "$q83"
freeze q166 --weight-format "$q166" --act-format "$q166" --input-format "$q166"
freeze q83-acc14sat --weight-format "$q83" --act-format "$q83" --input-format "$q83" --accum 'ap_fixed<14,4,AP_TRN,AP_SAT>'
[ -f "$OUT/float.onnx" ] || "$RFPGA" export onnx "$RUN" --out "$OUT/float.onnx" > /dev/null
if [ ! -f "$OUT/images-$IMAGES/logits.json" ]; then
  rm -rf "$OUT/images-$IMAGES"
  "$RFPGA" eval "$RUN" --images "$IMAGES" --data-dir "$DATA_DIR" --threads "$THREADS" --save-logits "$OUT/images-$IMAGES" > /dev/null
fi

echo "Timing on $IMAGES test images, $THREADS threads, best of $REPEATS passes each ($(date -u +%FT%TZ), $(nproc) cores)"
ORT=$("$PY" scripts/bench_onnxruntime.py "$OUT/float.onnx" "$OUT/images-$IMAGES" --threads "$THREADS" --repeats "$REPEATS")
SIM=$("$RFPGA" bench-sim "$OUT/q83" "$OUT/q166" "$OUT/q83-acc14sat" --images "$IMAGES" --repeats "$REPEATS" \
  --threads "$THREADS" --data-dir "$DATA_DIR")
echo "$ORT"
echo "$SIM"
"$PY" - "$ORT" "$SIM" <<'EOF'
import json, sys
ort = json.loads(sys.argv[1])
sims = [json.loads(l) for l in sys.argv[2].splitlines()]
base = ort["images_per_s"]
print()
print("| engine | formats | images/s | ratio to onnxruntime | top-1 |")
print("|---|---|---:|---:|---:|")
print(f"| {ort['engine']} (batch {ort['best_batch']}) | float32 | {base:,.0f} | 1.00 | {ort['top1']:.2f} % |")
for s in sims:
    print(f"| rfpga sim, {', '.join(s['conv_engines'])} | {s['formats']} | {s['images_per_s']:,.0f} | {s['images_per_s'] / base:.2f} | {s['top1']:.2f} % |")
EOF
