#!/usr/bin/env bash
# The board package of the deck's kept-skip ResNet-20 student for the Pynq-Z2: its fastest
# design within 80 % of the xc7z020 (rfpga fit), the HLS project, the batch and truncation
# checks in the threaded C-sim, the package (rfpga board), and the driver's round trip through
# the C-simulated core on real test images. Writes docs/board/r20-keep-pynq-z2.md.
# Usage: bash scripts/board-deck.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
N=${1:-100}
KEEP=sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-keep-mse/frozen
WORK=target/board
DOC=docs/board/r20-keep-pynq-z2.md
PY=.venv-onnx/bin/python
DATA=${RFPGA_DATA:-data/cifar-10-batches-bin}
mkdir -p "$WORK" docs/board
run() { # echo the command into the page, then the lines of its output matching $SHOW (else the last $TAIL)
  echo; echo '```'; echo "\$ $*"
  if [ -n "${SHOW:-}" ]; then "$@" 2>&1 | grep -E "$SHOW"; else "$@" 2>&1 | tail -n "${TAIL:-4}"; fi
  echo '```'
}
t0=$SECONDS
{
  echo "# The deck's kept-skip ResNet-20 on the Pynq-Z2: the board package"
  echo
  echo "Written by \`make board-deck\` (scripts/board-deck.sh) on $(date -u +%Y-%m-%d). Every check below ran"
  echo "without Vivado and without a board: the C simulation stands in for the core, as described in"
  echo "[Run it on a board](../howto/board.md). Accuracies are on the JPEG re-encoding of CIFAR-10 used"
  echo "here, about 1.5–3 points below lossless figures."
  SHOW='^(Chosen|Wrote)' run $R fit "$KEEP" --part xc7z020 --budget 80 --out "$WORK/r20-keep.json"
  rm -rf "$WORK/r20-keep-hls" "$WORK/r20-keep-pynq-z2"
  TAIL=2 run $R codegen "$KEEP" --design "$WORK/r20-keep.json" --out "$WORK/r20-keep-hls" --images "$N"
  TAIL=3 run $R csim "$WORK/r20-keep-hls" --threaded --batch 10 --truncate 100
  TAIL=1 run $R board "$WORK/r20-keep-hls" --board pynq-z2 --out "$WORK/r20-keep-pynq-z2"
  TAIL=3 run $PY "$WORK/r20-keep-pynq-z2/validate.py" --csim "$WORK/r20-keep-hls/csim/rfpga_csim_threaded" \
    --cifar "$DATA/test_batch.bin" --images "$N" --truncated-first 100
  echo
  echo "The package's files (\`$WORK/r20-keep-pynq-z2\`), in bytes:"
  echo
  echo '```'
  (cd "$WORK/r20-keep-pynq-z2" && find . -type f | sort | xargs wc -c | sed 's|\./||')
  echo '```'
  echo
  echo "Then, on a machine with Vitis and Vivado, and on the board ([Run it on a board](../howto/board.md)):"
  echo
  echo '```console'
  echo "\$ cd $WORK/r20-keep-pynq-z2 && ./build.sh"
  echo "\$ sudo -i"
  echo "\$ source /etc/profile.d/pynq_venv.sh"
  echo "\$ cd PATH/TO/r20-keep-pynq-z2 && python3 validate.py --cifar test_batch.bin"
  echo '```'
  echo
  echo "Wall time of the whole script: $((SECONDS - t0)) s on $(nproc) cores."
} > "$DOC.tmp"
mv "$DOC.tmp" "$DOC"
cat "$DOC"
