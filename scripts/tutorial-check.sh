#!/usr/bin/env bash
# Runs every command of docs/tutorial.md (the lines starting with "$ " in its console blocks), in
# order, in a new folder outside the checkout (so the binary must find CIFAR-10 and the ap_types
# headers by itself), at a small size: the tutorial's size variables are overridden after its
# own line sets them. `make` lines run in the checkout. Part of `make test`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rfpga-tutorial.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SMALL='EPOCHS=1 TRAIN_IMAGES=512 TEST_IMAGES=200 CSIM_IMAGES=3'
script="$WORK/tutorial.sh"
{
  echo 'set -euo pipefail'
  sed -n 's/^\$ //p' "$ROOT/docs/tutorial.md" | while IFS= read -r line; do
    line=${line//\$PWD\/target/$ROOT\/target}
    case "$line" in
      make\ *) line="make -C '$ROOT' --no-print-directory ${line#make }" ;;
    esac
    printf 'echo %q\n%s\n' "\$ $line" "$line"
    case "$line" in
      EPOCHS=*) echo "$SMALL" ;;
    esac
  done
} > "$script"
n=$(grep -c '^echo ' "$script")
[ "$n" -ge 5 ] || { echo "tutorial-check: only $n commands found in docs/tutorial.md" >&2; exit 1; }
cd "$WORK"
t0=$SECONDS
bash "$script" > "$WORK/log" 2>&1 || { tail -40 "$WORK/log"; echo "tutorial-check: FAILED (log above)"; exit 1; }
grep -q "passed, 0 failed" "$WORK/log" || { tail -20 "$WORK/log"; echo "tutorial-check: the C simulation did not pass"; exit 1; }
echo "tutorial-check: $n commands of docs/tutorial.md ran from $WORK in $((SECONDS - t0)) s: ok"
