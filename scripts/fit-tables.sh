#!/usr/bin/env bash
# The fastest designs that fit (rfpga fit --budget 80) for the deck's kept-skip and skipless
# (removed) ResNet-20 students on xc7z020, KV260 and ZCU104, and for ResNet-56 and ResNet-110
# (one epoch on 256 images: only their shape matters) with skips on ZCU104, ResNet-110 also
# with 4-bit weights (<4,2>: its <8,3> weights do not fit the ZCU104's memories within 80 %);
# each chosen design's project generated and C-simulated threaded on CSIM images back to back.
# Writes docs/fit/*.md and docs/fit/table.md. Usage: bash scripts/fit-tables.sh [CSIM_IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
CSIM=${1:-100}
OUT=docs/fit
WORK=target/fit-tables
mkdir -p "$OUT" "$WORK"
Q='ap_fixed<8,3,AP_RND,AP_SAT>'
KEEP=sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-keep-mse/frozen
REMOVE=sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-remove-mse/frozen
train() { # name depth weight-format
  if [ ! -f "$WORK/$1-frozen/frozen.json" ]; then
    rm -rf "$WORK/$1-run" "$WORK/$1-frozen"
    $R train --depth $2 --epochs 1 --train-images 256 --test-images 100 --weight-format "$3" --act-format "$Q" --input-format "$Q" --quiet --out "$WORK/$1-run"
    $R freeze "$WORK/$1-run" --out "$WORK/$1-frozen" --calib-images 0
  fi
}
train r56 56 "$Q"
train r110 110 "$Q"
train r110w4 110 'ap_fixed<4,2,AP_RND,AP_SAT>'
rows=()
run() { # name model part
  local name=$1 model=$2 part=$3 f="$OUT/$1-$3.md" design="$WORK/$1-$3.json" project="$WORK/$1-$3-hls"
  local t0=$SECONDS
  if ! { echo "\$ rfpga fit $model --part $part --budget 80"; $R fit "$model" --part "$part" --budget 80 --out "$design"; } > "$f" 2>&1; then
    echo "$name $part: $(grep '^error' "$f" | cut -c1-200)"
    rows+=("$name|$part|$f|no design to simulate|")
    return
  fi
  local fit_s=$((SECONDS - t0))
  rm -rf "$project"
  $R codegen "$model" --design "$design" --out "$project" --images "$CSIM" > /dev/null
  local csim
  csim=$($R csim "$project" --threaded | tail -1)
  { echo; echo "\$ rfpga codegen $model --design DESIGN --out PROJECT --images $CSIM && rfpga csim PROJECT --threaded"; echo "$csim"; } >> "$f"
  local est
  est=$($R estimate "$project" | grep '^Verdict')
  echo "$name $part: $(grep '^Chosen' "$f" | cut -c1-160) | csim: $csim | fit ${fit_s}s"
  rows+=("$name|$part|$f|$csim|$est")
}
for part in xc7z020 kv260 zcu104; do
  run r20-keep "$KEEP" $part
  run r20-remove "$REMOVE" $part
done
run r56-keep "$WORK/r56-frozen" zcu104
run r110-keep "$WORK/r110-frozen" zcu104
run r110w4-keep "$WORK/r110w4-frozen" zcu104
python3 scripts/fit-table.py "${rows[@]}" > "$OUT/table.md"
echo "wrote $OUT/table.md"
