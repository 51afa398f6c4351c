#!/usr/bin/env bash
# `make bench-train`: ResNet-20 training images/s in tch (rfpga) and in PyTorch eager, same model,
# batch 128, same threads, each in channels-last; ROUNDS alternating runs of each, then the
# ratio of medians. rfpga also runs with libtorch's BatchNorm/sum/ReLU instead of its fused
# kernels (tch-native-bn), to show what those kernels add. Installs a full PyTorch 2.13.0
# (Python side) in .venv-pytorch once.
set -euo pipefail
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
STEPS=${STEPS:-20}
VENV=.venv-pytorch
bash scripts/setup-pytorch.sh "$VENV"
out=$(mktemp)
for r in $(seq "$ROUNDS"); do
  target/release/rfpga bench-train --threads "$THREADS" --steps "$STEPS" | tee -a "$out"
  target/release/rfpga bench-train --threads "$THREADS" --steps "$STEPS" --native-batch-norm | tee -a "$out"
  "$VENV/bin/python" scripts/bench_train_pytorch.py --threads "$THREADS" --steps "$STEPS" | tee -a "$out"
  RFPGA_BENCH_IMPL=pytorch+mallopt MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
    "$VENV/bin/python" scripts/bench_train_pytorch.py --threads "$THREADS" --steps "$STEPS" | tee -a "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = {k: statistics.median(r["images_per_s"] for r in rows if r["impl"] == k) for k in ("tch", "tch-native-bn", "pytorch", "pytorch+mallopt")}
rng = {k: (min(r["images_per_s"] for r in rows if r["impl"] == k), max(r["images_per_s"] for r in rows if r["impl"] == k)) for k in med}
for k in ("tch", "tch-native-bn", "pytorch", "pytorch+mallopt"):
    print(f"{k:<15} median {med[k]:.1f} images/s (range {rng[k][0]:.1f}-{rng[k][1]:.1f})")
for k in ("tch", "tch-native-bn", "pytorch", "pytorch+mallopt"):
    ph = {p: statistics.median(r[p] for r in rows if r["impl"] == k) for p in ("forward_ms", "backward_ms", "step_ms")}
    print(f"{k:<15} median per step: forward {ph['forward_ms']:.1f} ms, backward {ph['backward_ms']:.1f} ms, SGD step {ph['step_ms']:.2f} ms")
print(f"ratio tch/pytorch = {med['tch'] / med['pytorch']:.3f}  (goal >= 1.10; PyTorch with glibc's defaults)")
print(f"ratio tch/tch-native-bn = {med['tch'] / med['tch-native-bn']:.3f}  (rfpga's fused BatchNorm+sum+ReLU vs libtorch's ops)")
print(f"ratio tch-native-bn/pytorch = {med['tch-native-bn'] / med['pytorch']:.3f}  (libtorch's ops on both sides)")
print(f"ratio tch/pytorch+mallopt = {med['tch'] / med['pytorch+mallopt']:.3f}  (both with the same allocator settings)")
PY
rm -f "$out"
