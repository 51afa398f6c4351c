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
[ -f "$TEACHER/summary.json" ] || { echo "deck-figures: $TEACHER is not finished (make deck-teacher)" >&2; exit 1; }
freeze() { # NAME, then rfpga freeze's format options
  local d=$FROZEN/$1; shift
  if [ ! -f "$d/estimate-$PART.json" ]; then
    "$R" freeze "$TEACHER" --out "$d/frozen" --data-dir "$DATA" "$@"
    "$R" sim "$d/frozen" --data-dir "$DATA" --json "$d/sim.json"
    "$R" estimate "$d/frozen" --part "$PART" --json "$d/estimate-$PART.json" > /dev/null
  fi
}
mkdir -p "$FROZEN"
freeze w16 --weight-format 'ap_fixed<16,6,AP_RND,AP_SAT>'
freeze ptq83 --weight-format 'ap_fixed<8,3,AP_RND,AP_SAT>' --act-format 'ap_fixed<8,3,AP_RND,AP_SAT>'
mkdir -p docs/deck
# A sweep with no finished run yet is said so and left out; the table lists its rows as not finished.
summarize() { # SWEEP, NAME for its summary and timing in docs/deck, its figure, the figure's name there
  if "$R" summarize "$1" > /dev/null; then
    # The skip figure needs a run that changed skips; until then there is none to copy.
    if [ -f "$1/$3" ]; then cp "$1/$3" "docs/deck/$4"; else rm -f "docs/deck/$4"; echo "deck-figures: $1 has no $3 yet (its finished runs do not make one)" >&2; fi
    { cat "$1/summary.md"; echo; echo "Test images: the JPEG re-encoding of CIFAR-10 used here, about 1.5–3 points below lossless figures."; } > "docs/deck/summary-$2.md"
    cp "$1/timing.md" "docs/deck/timing-$2.md"
  else
    rm -f "docs/deck/$4"  # never a figure of an earlier state beside a table of this one
    echo "deck-figures: $1 not summarized (the reason above); its figure is not drawn" >&2
  fi
}
summarize sweeps/deck20 skips accuracy-vs-skips.svg accuracy-vs-skips.svg
summarize sweeps/deck20-skipless skipless accuracy.svg skipless-kd.svg
python3 scripts/deck-table.py "$TEACHER" "$FROZEN" sweeps/deck20 sweeps/deck20-skipless "$PART" > docs/deck/table.md.tmp
mv docs/deck/table.md.tmp docs/deck/table.md
# docs/results/deck.md includes the table and shows the figures (mdBook {{#include}}).
cat docs/deck/table.md
