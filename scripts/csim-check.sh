#!/bin/bash
# C simulation against the simulator (issue 6): the frozen ResNet-20s of `make sim-agreement`
# (long, removed and shortened skips at <8,3> and <16,4>, AP_RND/AP_SAT activations) and one
# with AP_WRAP activations where values really wrap, each generated with `rfpga codegen`,
# compiled with g++ against the real ap_types headers and run on IMAGES test images.
set -euo pipefail
R=target/release/rfpga
Q=${Q:-runs/q}
IMAGES=${IMAGES:-100}
q164="--weights ap_fixed<16,4,AP_RND,AP_SAT> --act ap_fixed<16,4,AP_RND,AP_SAT> --input ap_fixed<16,4,AP_RND,AP_SAT> --bias ap_fixed<20,6,AP_RND,AP_SAT>"
# The shortened network at <16,4> and the long one with wrapping activations (no QAT needed to
# check C-sim against the simulator).
[ -d $Q/r20-q164-short-frozen ] || $R quantize $Q/r20-q83-short $q164 --calib 0 --out $Q/r20-q164-short-frozen > /dev/null
[ -d $Q/r20-q83wrap-long-frozen ] || $R quantize $Q/r20-q83-long --act 'ap_fixed<8,3,AP_RND,AP_WRAP>' --calib 0 --out $Q/r20-q83wrap-long-frozen > /dev/null
for f in q83-long q83-none q83-short q164-long q164-none q164-short q83wrap-long; do
  fz=$Q/r20-$f-frozen
  echo "== $fz"
  $R sim $fz --limit $IMAGES | grep -E "top-1|out of their format|No value"
  $R codegen $fz --out $Q/hls-$f --vectors $IMAGES > /dev/null
  $R csim $Q/hls-$f | tail -1
done
