#!/usr/bin/env bash
# `make ste-ab`: the QAT gradient rule measured on the run that collapsed (issue #16): ResNet-20,
# ap_fixed<8,3,AP_RND,AP_SAT> weights, activations and input, <16,6> biases, QAT from the first
# epoch, all 50,000 training images, EPOCHS epochs of the default recipe — once with the identity
# straight-through gradient (`--ste identity`) and once zeroed where the format clips
# (`--ste clipped`), seeds SEEDS. Each run is resumable (runs/ste-ab/RULE-sSEED; a finished one
# is skipped); THREADS per run. With TABLE=0 only the runs are made (for running seeds side by
# side); otherwise the table (final and best test top-1 per run, mean ± std) goes to
# docs/ste-ab.md.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
EPOCHS=${EPOCHS:-8}
SEEDS=${SEEDS:-"0 1"}
THREADS=${THREADS:-2}
DATA=${DATA:-data/cifar-10-batches-bin}
OUT=${OUT:-runs/ste-ab}
W='ap_fixed<8,3,AP_RND,AP_SAT>'
B='ap_fixed<16,6,AP_RND,AP_SAT>'
RULES=(identity clipped)
mkdir -p "$OUT"
for seed in $SEEDS; do
  for rule in "${RULES[@]}"; do
    run=$OUT/$rule-s$seed
    if [ -f "$run/summary.json" ]; then continue; fi
    echo "== --ste $rule, seed $seed"
    if [ -f "$run/checkpoint.safetensors" ]; then
      $R train --resume "$run" --quiet --threads "$THREADS"
    else
      $R train --depth 20 --epochs "$EPOCHS" --qat-start 0 --seed "$seed" --data-dir "$DATA" \
        --weight-format "$W" --act-format "$W" --input-format "$W" --bias-format "$B" \
        --ste "$rule" --threads "$THREADS" --quiet --out "$run"
    fi
  done
done
[ "${TABLE:-1}" = 0 ] && exit 0
python3 - "$OUT" "$EPOCHS" "$SEEDS" "${RULES[@]}" <<'PY' | tee docs/ste-ab.md
import json, statistics, sys
out, epochs, seeds, *rules = sys.argv[1:]
seeds = seeds.split()
def metrics(r, s):
    return [json.loads(l) for l in open(f"{out}/{r}-s{s}/metrics.jsonl")]
print(f"# QAT gradient A/B: ResNet-20 <8,3>, QAT from epoch 0, {epochs} epochs on all 50,000 training images, seeds {', '.join(seeds)}\n")
print("Test top-1 on all 10,000 test images of the JPEG copy of CIFAR-10 (lossless figures run 1.5-3 points higher),")
print("with the fake quantization the run trained with (what the frozen model computes).")
print(f"Reproduce: `make ste-ab` (scripts/ste-ab.sh; EPOCHS={epochs} SEEDS=\"{' '.join(seeds)}\").\n")
print("| `--ste` | test top-1 per epoch, seed " + seeds[0] + " (%) | final top-1 per seed (%) | final mean ± std (%) | final train loss per seed |")
print("|---|---|---|---:|---|")
for r in rules:
    ms = {s: metrics(r, s) for s in seeds}
    fin = [100 * ms[s][-1]["test_acc"] for s in seeds]
    sd = statistics.stdev(fin) if len(fin) > 1 else 0.0
    curve = " ".join(f"{100 * m['test_acc']:.1f}" for m in ms[seeds[0]])
    loss = ", ".join(f"{ms[s][-1]['train_loss']:.3f}" for s in seeds)
    print(f"| {r} | {curve} | {', '.join(f'{x:.2f}' for x in fin)} | {statistics.mean(fin):.2f} ± {sd:.2f} | {loss} |")
PY
