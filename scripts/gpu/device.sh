#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool's `run`), in the repository root; built by
# scripts/gpu/build.sh here. Three calls, each carrying one part (docs/howto/gpu.md):
#   scripts/gpu/device.sh stash        (carry .gpu/p1)   keeps part 1 in /root/rfpga-gpu
#   scripts/gpu/device.sh stash        (carry .gpu/p2)   keeps part 2
#   scripts/gpu/device.sh run [ARGS]   (carry .gpu/p3)   part 3 + binary: unpack, check, train
# The machine keeps /root between calls only while it stays warm (30 s after a call), so the
# calls follow one another at once; `run` says which part is missing otherwise.
# `run` trains ResNet-20 on the He et al. schedule (164 epochs ≈ 64k steps of 128, lr 0.1 ÷10
# at epochs 82 and 123, wd 1e-4, momentum 0.9, no Nesterov, no label smoothing) with
# `--device cuda`, stopping itself at LIMIT_S seconds (default 420: the session's 15 minutes of
# device time include the machine's start and the two stash calls); a later call with `run`
# resumes it while the machine is warm and device time is left (runs/gpu-he is kept while warm).
# Everything it reports goes to $OUT: log, metrics.jsonl, train.json, summary.json, weights.
set -euo pipefail
S=/root/rfpga-gpu
mkdir -p "$S"
for p in .gpu/p1 .gpu/p2 .gpu/p3; do [ -d $p ] && cp -n $p/* "$S"/ 2>/dev/null || true; done
ls -la "$S"
[ "${1:-}" = stash ] && exit 0
[ "${1:-}" = run ] || { echo "usage: device.sh stash|run [extra rfpga train args]" >&2; exit 2; }
shift
for f in cifar.tar.xz.00 cifar.tar.xz.01 cifar.tar.xz.02 cifar.sha256 SHA256SUMS rfpga; do
  [ -f "$S/$f" ] || { echo "device.sh: $S/$f missing (the machine went cold between calls: repeat the stash calls)" >&2; exit 1; }
done
if [ ! -f "$S/data/cifar-10-batches-bin/test_batch.bin" ]; then
  cat "$S"/cifar.tar.xz.0? > "$S/cifar-10-binary.tar.xz"
  (cd "$S" && sha256sum -c --quiet cifar.sha256)
  mkdir -p "$S/data" && tar -xJf "$S/cifar-10-binary.tar.xz" -C "$S/data"
  (cd "$S/data/cifar-10-batches-bin" && sha256sum -c --quiet "$S/SHA256SUMS")
fi
# The image's own PyTorch 2.11 (its libraries carry no run path to the CUDA ones: list them).
SP=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
LIBS="$SP/torch/lib"
for d in "$SP"/nvidia/*/lib "$SP"/nvidia/cu13/lib; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
R="$S/rfpga"; chmod +x "$R"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c 'import torch; print("python torch", torch.__version__)' | tee -a "$OUT/gpu.txt"
RUN=runs/gpu-he
LIMIT_S=${LIMIT_S:-420}
start=$(date +%s)
set +e
if [ -f $RUN/checkpoint.safetensors ]; then
  timeout --signal=INT "$LIMIT_S" "$R" train --resume $RUN --quiet 2>&1 | tee "$OUT/log"
else
  timeout --signal=INT "$LIMIT_S" "$R" train --device cuda --depth 20 --epochs 164 --lr 0.1 \
    --schedule multistep:82,123 --weight-decay 1e-4 --momentum 0.9 --no-nesterov \
    --label-smoothing 0 --seed 0 --threads 8 --data-dir "$S/data/cifar-10-batches-bin" --quiet "$@" \
    --out $RUN 2>&1 | tee "$OUT/log"
fi
rc=${PIPESTATUS[0]}
set -e
echo "wall ${SECONDS}s, train call $(( $(date +%s) - start ))s, rc $rc" | tee -a "$OUT/log"
for f in metrics.jsonl train.json summary.json model.json weights.safetensors checkpoint.safetensors; do
  [ -f $RUN/$f ] && cp $RUN/$f "$OUT/" || true
done
