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
# A sweep with no finished run yet is said so and left out; the table lists its rows as not finished.
summarize() { # SWEEP, NAME for its summary and timing in docs/deck, its figure, the figure's name there
  if "$R" summarize "$1" > /dev/null; then
    # The skip figure needs a run that changed skips; until then there is none to copy.
    if [ -f "$1/$3" ]; then cp "$1/$3" "docs/deck/$4"; else rm -f "docs/deck/$4"; echo "deck-figures: $1 has no $3 yet (its finished runs do not make one)" >&2; fi
    cp "$1/summary.md" "docs/deck/summary-$2.md"
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
# The README shows the table between its deck-table markers, replaced whole (never by hand).
python3 - <<'PY'
import os
readme = open("README.md").read()
start, end = "<!-- deck-table: make deck-figures writes this block -->\n", "<!-- deck-table end -->\n"
if start not in readme or end not in readme:
    raise SystemExit("deck-figures: README.md has no deck-table markers")
head, rest = readme.split(start, 1)
_, tail = rest.split(end, 1)
with open("README.md.tmp", "w") as f:
    block = open("docs/deck/table.md").read().rstrip("\n") + "\n"
    # The figures drawn so far, shown where the table is (paths from the repository root).
    for svg, alt in (("docs/deck/accuracy-vs-skips.svg", "Test top-1 against skips removed or shortened, the teacher and the kept-skips student as reference lines"),
                     ("docs/deck/skipless-kd.svg", "Skipless ResNet-20 with and without KD")):
        if os.path.exists(svg):
            block += f"\n![{alt}]({svg})\n\n`make deck-figures` draws it from the runs ({svg}).\n"
    f.write(head + start + block + end + tail)
os.replace("README.md.tmp", "README.md")
PY
cat docs/deck/table.md
