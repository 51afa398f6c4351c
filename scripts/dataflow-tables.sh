#!/bin/bash
# The dataflow intervals (old and new layer library) and the resource estimates of ResNet-20s
# at <8,3> with long, removed and shortened skips, on xc7z020 (and xczu7ev), written to
# docs/estimates/. The models are trained briefly (1 epoch on 2,000 images of the JPEG copy of
# CIFAR-10: the hardware figures depend on the structure and the formats, not on accuracy), then
# frozen at <8,3> weights, activations and input with <16,6> biases, as in `make sim-agreement`.
set -euo pipefail
R=target/release/rfpga
OUT=${OUT:-runs/df}
DATA=${DATA:-data/cifar-10-batches-bin}
F='ap_fixed<8,3,AP_RND,AP_SAT>'
mkdir -p docs/estimates "$OUT"
for s in long none short; do
  r=$OUT/r20-$s
  [ -f "$r/summary.json" ] || $R train --depth 20 --shortcut A --skips $s --epochs 1 --train-images 2000 --test-images 500 \
    --seed 0 --data-dir "$DATA" --quiet --out "$r" > /dev/null
  [ -f "$r-frozen/frozen.json" ] || $R freeze "$r" --weight-format "$F" --act-format "$F" --input-format "$F" --bias-format 'ap_fixed<16,6,AP_RND,AP_SAT>' \
    --calib-images 200 --data-dir "$DATA" --out "$r-frozen" > /dev/null
  { echo "\$ rfpga dataflow $r-frozen --old-library"; $R dataflow "$r-frozen" --old-library;
    echo; echo "\$ rfpga dataflow $r-frozen"; $R dataflow "$r-frozen"; } > docs/estimates/r20-q83-$s-dataflow-xc7z020.md
  grep -h "interval" docs/estimates/r20-q83-$s-dataflow-xc7z020.md | sed "s|^|$s: |"
  for p in xc7z020 xczu7ev; do
    $R estimate "$r-frozen" --part $p --out docs/estimates/r20-q83-$s-$p.md > /dev/null
  done
  $R fit "$r-frozen" --part xc7z020 > docs/estimates/r20-q83-$s-fit-xc7z020.md 2>&1 || true
  echo "$s fit: $(grep Chosen docs/estimates/r20-q83-$s-fit-xc7z020.md | cut -c1-150)"
done
$R estimate $OUT/r20-long-frozen $OUT/r20-none-frozen $OUT/r20-short-frozen --part xc7z020 \
   --plot docs/estimates/r20-q83-skips-xc7z020.svg > /dev/null
$R estimate $OUT/r20-long-frozen $OUT/r20-none-frozen $OUT/r20-short-frozen --part xczu7ev \
   --plot docs/estimates/r20-q83-skips-xczu7ev.svg > /dev/null
