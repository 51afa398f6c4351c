#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each, JOBS at a time, from a corpus seeded with
# real inputs (the repository's sweep files and report fixtures, and a run, a frozen model and
# a design made here with the built rfpga). A crash stops nothing else: its input is copied to
# fuzz/regressions/TARGET/ (run by the ordinary tests once fixed) and the script fails at the
# end. Logs: fuzz/logs/TARGET.log; summary: fuzz/logs/summary.txt.
#   scripts/fuzz.sh [SECONDS=600] [JOBS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
JOBS=${2:-2}
R=$PWD/target/release/rfpga
DATA=${DATA:-data/cifar-10-batches-bin}
export RUSTC_BOOTSTRAP=1 # libFuzzer's flags on a stable toolchain
# The targets link libtorch (train.json is rfpga-train's); the rfpga binary has it as its
# runpath, the fuzz binaries find it here.
export LD_LIBRARY_PATH=$PWD/.venv-torch/lib/python3.11/site-packages/torch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TARGETS=(cifar10 design fixed_format formats_json frozen_json model_json reports safetensors sweep_toml train_json)

# Seeds: real files of each kind.
seed=fuzz/seeds
rm -rf "$seed" && mkdir -p "$seed" fuzz/logs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$R import torch crates/rfpga-interop/tests/fixtures/resnet8/state-fc.safetensors --depth 8 --shortcut B --out "$work/run" > /dev/null
$R freeze "$work/run" --weight-format 'ap_fixed<8,3,AP_RND,AP_SAT>' --act-format 'ap_fixed<8,3,AP_RND,AP_SAT>' --calib-images 0 --out "$work/frozen" > /dev/null
$R fit "$work/frozen" --out "$work/design.json" > /dev/null
$R train --depth 8 --epochs 1 --train-images 256 --test-images 64 --data-dir "$DATA" --quiet --threads 1 \
  --weight-format 'ap_fixed<8,3>' --out "$work/train" > /dev/null
for t in "${TARGETS[@]}"; do mkdir -p "$seed/$t" "fuzz/corpus/$t"; done
head -c $((3073 * 3)) "$DATA/test_batch.bin" > "$seed/cifar10/three-images"
cp "$work/design.json" "$seed/design/"; printf '\1conv1=2,layer1.0.conv1=4' > "$seed/design/parallelism"
printf '\2auto' > "$seed/design/storage"; printf '\3layer3.0.conv1=dsp,conv1=fabric' > "$seed/design/multipliers"
for f in 'ap_fixed<8,3>' 'ap_ufixed<8,0>' 'ap_fixed<16,6,AP_RND,AP_SAT>' 'ap_fixed<14,4,AP_TRN,AP_SAT_SYM>' 'ap_fixed<9,3,AP_RND_CONV,AP_WRAP_SM,2>'; do
  printf '%s' "$f" > "$seed/fixed_format/$(echo "$f" | tr -c 'a-z0-9' _)"
done
cp "$work/frozen/frozen.json" "$seed/frozen_json/"
cp fuzz/regressions/formats_json/narrowed "$seed/formats_json/"
cp "$work/run/model.json" "$seed/model_json/"; cp "$work/train/model.json" "$seed/model_json/model-train.json"
for f in crates/rfpga-estimate/tests/fixtures/*.xml; do { printf '\0'; cat "$f"; } > "$seed/reports/$(basename "$f")"; done
for f in crates/rfpga-estimate/tests/fixtures/*.rpt; do { printf '\1'; cat "$f"; } > "$seed/reports/$(basename "$f")"; done
cp "$work/run/weights.safetensors" "$seed/safetensors/float.safetensors"
cp "$work/frozen/weights.safetensors" "$seed/safetensors/int.safetensors"
cp sweeps/*.toml "$seed/sweep_toml/"
cp "$work/train/train.json" "$seed/train_json/"

# No sanitizer (the parsers are safe Rust: a bug is a panic), debug assertions on (so an
# arithmetic overflow is one too).
(cd fuzz && cargo fuzz build -s none -a)

run_one() {
  local t=$1
  (cd fuzz && cargo fuzz run -s none -a "$t" "corpus/$t" "seeds/$t" -- \
     -max_total_time="$SECS" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1) > "fuzz/logs/$t.log" 2>&1
}
export -f run_one
export SECS
status=0
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {} || echo "{} FAILED"' | tee fuzz/logs/failed.txt || true
{
  echo "make fuzz: $SECS s per target, $JOBS at a time, $(date -u +%F)"
  for t in "${TARGETS[@]}"; do
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    secs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
    echo "$t: ${runs:-?} inputs (${secs:-?}/s), corpus $(ls "fuzz/corpus/$t" | wc -l), crash/timeout/oom files $crashes"
    if [ "$crashes" -gt 0 ]; then
      status=1
      cp "fuzz/artifacts/$t"/* "fuzz/regressions/$t/"
    fi
  done
} | tee fuzz/logs/summary.txt
grep -q FAILED fuzz/logs/failed.txt && status=1
exit $status
