#!/bin/bash
# C simulation against the simulator: frozen ResNet-20s with long, removed and shortened skips
# at <8,3> and <16,4> (AP_RND/AP_SAT), and one with AP_WRAP activations where values really
# wrap, each generated with `rfpga codegen` (stream depths sized by the dataflow model),
# compiled with g++ against the real ap_types headers and run on IMAGES test images with the
# threaded C-sim (each process a thread, each stream blocking at its generated depth): every
# logit bit-exact, TLAST on every image's last word, no deadlock.
# The models: `make sim-agreement`'s QAT runs in $Q when they exist, else short trainings
# (1 epoch on 2,000 images; the check is C-sim against the simulator, not accuracy).
set -euo pipefail
R=target/release/rfpga
Q=${Q:-runs/q}
IMAGES=${IMAGES:-100}
DATA=${DATA:-data/cifar-10-batches-bin}
q83="--weights ap_fixed<8,3,AP_RND,AP_SAT> --act ap_fixed<8,3,AP_RND,AP_SAT> --input ap_fixed<8,3,AP_RND,AP_SAT> --bias ap_fixed<16,6,AP_RND,AP_SAT>"
q164="--weights ap_fixed<16,4,AP_RND,AP_SAT> --act ap_fixed<16,4,AP_RND,AP_SAT> --input ap_fixed<16,4,AP_RND,AP_SAT> --bias ap_fixed<20,6,AP_RND,AP_SAT>"
mkdir -p "$Q"
for s in long none short; do
  r=$Q/r20-q83-$s
  if [ ! -f "$r/summary.json" ]; then
    $R train --depth 20 --shortcut A --skips $s --epochs 1 --train-images 2000 --test-images 500 --seed 0 \
      --data-dir "$DATA" --quiet --out "$r" > /dev/null
  fi
  [ -d "$r-frozen" ] || $R freeze "$r" $q83 --calib-images 200 --data-dir "$DATA" --out "$r-frozen" > /dev/null
  [ -d "$Q/r20-q164-$s-frozen" ] || $R freeze "$r" $q164 --calib-images 0 --data-dir "$DATA" --out "$Q/r20-q164-$s-frozen" > /dev/null
done
[ -d $Q/r20-q83wrap-long-frozen ] || $R freeze $Q/r20-q83-long --weight-format 'ap_fixed<8,3,AP_RND,AP_SAT>' --input-format 'ap_fixed<8,3,AP_RND,AP_SAT>' \
  --bias-format 'ap_fixed<16,6,AP_RND,AP_SAT>' --act-format 'ap_fixed<8,3,AP_RND,AP_WRAP>' --calib-images 0 --data-dir "$DATA" --out $Q/r20-q83wrap-long-frozen > /dev/null
for f in q83-long q83-none q83-short q164-long q164-none q164-short q83wrap-long; do
  fz=$Q/r20-$f-frozen
  echo "== $fz"
  $R sim $fz --images $IMAGES --data-dir "$DATA" | grep -E "top-1|out of their format|No value"
  rm -rf "$Q/hls-$f"
  $R codegen $fz --out $Q/hls-$f --images $IMAGES --data-dir "$DATA" > /dev/null
  $R csim $Q/hls-$f --threaded | tail -1
done
