#!/bin/bash
# Resource estimates of the frozen ResNet-20s at <8,3> (long, removed and shortened skips; the
# QAT models of `make sim-agreement`) on xc7z020 and xczu7ev, one lane per convolution, plus
# `rfpga fit` on xc7z020, written to docs/estimates/.
set -euo pipefail
R=target/release/rfpga
Q=${Q:-runs/q}
mkdir -p docs/estimates
for s in long none short; do
  for p in xc7z020 xczu7ev; do
    $R estimate $Q/r20-q83-$s-frozen --part $p --out docs/estimates/r20-q83-$s-$p.md > /dev/null
    echo "docs/estimates/r20-q83-$s-$p.md: $(tail -1 docs/estimates/r20-q83-$s-$p.md | cut -c1-120)"
  done
  $R fit $Q/r20-q83-$s-frozen --part xc7z020 > docs/estimates/r20-q83-$s-fit-xc7z020.md 2>&1 || true
  echo "docs/estimates/r20-q83-$s-fit-xc7z020.md: $(tail -1 docs/estimates/r20-q83-$s-fit-xc7z020.md | cut -c1-120)"
done
$R estimate $Q/r20-q83-long-frozen $Q/r20-q83-none-frozen $Q/r20-q83-short-frozen --part xc7z020 \
   --plot docs/estimates/r20-q83-skips-xc7z020.svg > /dev/null
$R estimate $Q/r20-q83-long-frozen $Q/r20-q83-none-frozen $Q/r20-q83-short-frozen --part xczu7ev \
   --plot docs/estimates/r20-q83-skips-xczu7ev.svg > /dev/null
echo "docs/estimates/r20-q83-skips-{xc7z020,xczu7ev}.svg"
