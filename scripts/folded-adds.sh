#!/bin/bash
# Whole-pixel against folded skip adds (`--add-lanes 1`: one channel per cycle) on the deck's
# seed-0 students (sweeps/deck20, committed): estimate at one lane per convolution and `rfpga fit`
# on xc7z020, written to docs/estimates/deck-folded-adds.md. Reads only the frozen models.
set -euo pipefail
R=target/release/rfpga
OUT=docs/estimates/deck-folded-adds.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "# Skip adds: a whole pixel per cycle against one channel per cycle (\`--add-lanes 1\`)"
  echo
  echo "Written by \`bash scripts/folded-adds.sh\` from the seed-0 students of sweeps/deck20 (xc7z020, 10 ns)."
  echo "Estimates of the generated code, not synthesis (docs/estimate.md)."
  echo
  echo "| skips | adds | BRAM_18K % | DSP % | FF % | LUT % | fits at 1 lane | images/s at 1 lane | \`rfpga fit\`: images/s (BRAM / DSP / FF / LUT) |"
  echo "|---|---|---:|---:|---:|---:|---|---:|---|"
  for s in keep shorten remove; do
    F=sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-$s-mse/frozen
    [ -f "$F/frozen.json" ] || { echo "$F: missing (make deck)" >&2; exit 1; }
    for k in all 1; do # all: whole-pixel adds, which fit must not fold either
      [ "$s" = remove ] && [ "$k" = 1 ] && continue # no adds to fold
      flag=(--add-lanes "$k")
      rm -f "$tmp/e.json"
      $R estimate "$F" --part xc7z020 "${flag[@]}" --json "$tmp/e.json" > /dev/null
      chosen=$($R fit "$F" --part xc7z020 "${flag[@]}" 2>&1 | grep '^Chosen' | sed -E 's/^Chosen[^:]*: ([0-9.]+) images\/s, BRAM_18K ([0-9]+ %), DSP ([0-9]+ %), FF ([0-9]+ %), LUT ([0-9]+ %).*/\1 (\2 \/ \3 \/ \4 \/ \5)/')
      python3 - "$tmp/e.json" "$s" "$k" "${chosen:-none fits}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
u = d["utilization_percent"]
adds = "whole pixel" if sys.argv[3] == "all" else f"{sys.argv[3]} channel/cycle"
if sys.argv[2] == "remove":
    adds = "none"
print(f"| {sys.argv[2]} | {adds} | {u['bram_18k']:.1f} | {u['dsp']:.1f} | {u['ff']:.1f} | {u['lut']:.1f} | {'yes' if d['fits'] else 'no'} | {d['images_per_s']:.1f} | {sys.argv[4]} |")
PY
    done
  done
} > "$tmp/out.md"
mv "$tmp/out.md" "$OUT"
cat "$OUT"
