#!/usr/bin/env bash
# `make deck-figures` (issue #16): the two sweeps summarized, the float teacher frozen and
# estimated like a sweep's float run (and post-training quantized to <8,3> for contrast), and
# docs/deck/: the two figures, the summaries, the timings and table.md (scripts/deck-table.py),
# which the README's deck table is.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
TEACHER=${DECK_TEACHER:-runs/deck/teacher-r20}
DATA=${DATA_DIR:-data/cifar-10-batches-bin}
PART=xc7z020
FROZEN=runs/deck/teacher-r20-frozen
for s in sweeps/deck20 sweeps/deck20-skipless; do "$R" summarize "$s" > /dev/null; done
[ -f "$TEACHER/summary.json" ] || { echo "deck-figures: $TEACHER is not finished (make deck-teacher)" >&2; exit 1; }
freeze() { # NAME, then rfpga quantize's format options
  local d=$FROZEN/$1; shift
  if [ ! -f "$d/estimate-$PART.json" ]; then
    "$R" quantize "$TEACHER" --out "$d/frozen" --data-dir "$DATA" "$@"
    "$R" sim "$d/frozen" --data-dir "$DATA" --json "$d/sim.json"
    "$R" estimate "$d/frozen" --part "$PART" --json "$d/estimate-$PART.json" > /dev/null
  fi
}
mkdir -p "$FROZEN"
freeze w16 --weights 'ap_fixed<16,6,AP_RND,AP_SAT>'
freeze ptq83 --weights 'ap_fixed<8,3,AP_RND,AP_SAT>' --act 'ap_fixed<8,3,AP_RND,AP_SAT>'
mkdir -p docs/deck
cp sweeps/deck20/accuracy-vs-skips.svg docs/deck/accuracy-vs-skips.svg
cp sweeps/deck20-skipless/accuracy.svg docs/deck/skipless-kd.svg
cp sweeps/deck20/summary.md docs/deck/summary-skips.md
cp sweeps/deck20-skipless/summary.md docs/deck/summary-skipless.md
cp sweeps/deck20/timing.md docs/deck/timing-skips.md
cp sweeps/deck20-skipless/timing.md docs/deck/timing-skipless.md
python3 scripts/deck-table.py "$TEACHER" "$FROZEN" sweeps/deck20 sweeps/deck20-skipless "$PART" > docs/deck/table.md.tmp
mv docs/deck/table.md.tmp docs/deck/table.md
cat docs/deck/table.md
