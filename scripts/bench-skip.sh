#!/usr/bin/env bash
# `make bench-skip`: wall time of an iterative skip-removal run against a plain KD run of the same
# epochs, student, teacher and data, in one command. Both are ordinary `rfpga distill` runs;
# the removal run changes the network in place (no restart, no reload) and measures the test
# accuracy once more after each change. Goal: ratio <= 1.05 (the deck's restart-per-removal
# approach cost 5-9x, the deck authors' figure as issue #4 quotes it).
set -euo pipefail
RFPGA=${RFPGA:-target/release/rfpga}
TEACHER=${TEACHER:-runs/bench-teacher}
LIMIT_TRAIN=${LIMIT_TRAIN:-5000}
LIMIT_TEST=${LIMIT_TEST:-1000}
ROUNDS=${ROUNDS:-1}
EVERY=${EVERY:-3}   # Tailor's default: one removal every 3 epochs
WORK=$(mktemp -d runs/.bench-skip.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ ! -f "$TEACHER/weights.safetensors" ]; then
  echo "training a quick teacher in $TEACHER"
  $RFPGA train --depth 20 --epochs 2 --train-images "$LIMIT_TRAIN" --test-images "$LIMIT_TEST" --out "$TEACHER" --quiet
fi
# 9 removals, one every EVERY epochs, then 1 fine-tuning epoch; the same epochs for both runs.
# Test and training subsets keep CIFAR-10's 1:5 ratio, so the extra test pass after each removal
# weighs what it weighs on the full data set.
EPOCHS=$((9 * EVERY + 1))
common=(--teacher "$TEACHER" --kd mse --every "$EVERY" --finetune 1 --epochs "$EPOCHS" --train-images "$LIMIT_TRAIN" --test-images "$LIMIT_TEST" --quiet)
run() { # policy round
  local t0=$EPOCHREALTIME
  $RFPGA distill "${common[@]}" --skip-policy "$1" --out "$WORK/$1-$2" > "$WORK/$1-$2.log"
  echo "$1 $t0 $EPOCHREALTIME" >> "$WORK/times"
  tail -n 1 "$WORK/$1-$2.log"
}
for r in $(seq "$ROUNDS"); do
  # Alternate the order so a slow phase of the machine does not favour one side.
  if [ $((r % 2)) -eq 1 ]; then run keep "$r"; run remove "$r"; else run remove "$r"; run keep "$r"; fi
done
python3 - "$WORK/times" <<'PY'
import sys, statistics
t = {}
for line in open(sys.argv[1]):
    k, t0, t1 = line.split(); t.setdefault(k, []).append(float(t1) - float(t0))
keep, remove = statistics.median(t["keep"]), statistics.median(t["remove"])
print(f"plain KD:      {keep:.1f} s (median of {len(t['keep'])})")
print(f"skip removal:  {remove:.1f} s (median of {len(t['remove'])}; 9 removals in place, 9 extra test passes)")
print(f"ratio removal/KD = {remove / keep:.3f}  (goal <= 1.05)")
PY
