#!/bin/bash
# Freeze/simulator agreement (issue 5): QAT fine-tunes of ResNet-20 at <8,3> and <16,4> with
# long, no and short skips; each is frozen with `rfpga freeze` and its bit-exact simulation
# compared with the QAT model in tch on the 10,000 test images (`rfpga eval RUN --frozen`).
# Needs the teacher and the skip-experiment students (make train / make skip-experiment);
# override with TEACHER, REMOVED, SHORTENED. Completed runs are reused.
set -euo pipefail
R=target/release/rfpga
TEACHER=${TEACHER:-runs/resnet20-e40}
REMOVED=${REMOVED:-runs/skip-r20-w83rs-e1-n15k-remove}
SHORTENED=${SHORTENED:-runs/skip-r20-w83rs-e1-n15k-shorten}
OUT=${OUT:-runs/q}
# --ste identity: the gradient rule these figures were made with (the default before the A/B).
common="--epochs 1 --lr 0.01 --train-images 20000 --quiet --kd hinton --ste identity"
q83="--weight-format ap_fixed<8,3,AP_RND,AP_SAT> --act-format ap_fixed<8,3,AP_RND,AP_SAT> --input-format ap_fixed<8,3,AP_RND,AP_SAT> --bias-format ap_fixed<16,6,AP_RND,AP_SAT>"
q164="--weight-format ap_fixed<16,4,AP_RND,AP_SAT> --act-format ap_fixed<16,4,AP_RND,AP_SAT> --input-format ap_fixed<16,4,AP_RND,AP_SAT> --bias-format ap_fixed<20,6,AP_RND,AP_SAT>"
run() { # name teacher skips formats
  local r=$OUT/r20-$1
  [ -f "$r/summary.json" ] || $R distill --teacher "$2" --skips "$3" $common $4 --out "$r"
  $R freeze "$r" --calib-images 200 --out "$r-frozen" > /dev/null
  $R eval "$r" --frozen "$r-frozen"
}
run q83-long "$TEACHER" long "$q83"
run q83-none "$REMOVED" none "$q83"
run q83-short "$SHORTENED" short "$q83"
run q164-long "$TEACHER" long "$q164"
run q164-none "$REMOVED" none "$q164"
