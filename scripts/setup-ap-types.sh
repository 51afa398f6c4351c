#!/usr/bin/env bash
# The Xilinx arbitrary-precision headers (ap_int/ap_fixed, Apache-2.0) from the pinned hls4ml
# wheel, as in shared/notes/ap_fixed.md, into a git-ignored folder with the license beside them.
# Only the Apache-2.0 headers are kept: the wheel's hls_stream.h and ap_shift_reg.h carry
# proprietary notices. Idempotent: a stamp records the pin; offline once done.
# Offline first run: HLS4ML_WHEEL=/path/to/hls4ml-1.3.0-py3-none-any.whl bash scripts/setup-ap-types.sh
set -euo pipefail
DEST=${1:-third_party/ap_types}
PY=${PYTHON:-python3}
VERSION=1.3.0
SHA256=01bf1de2cd9bca56699b9fe3385cb1735026b022f9580fe1d73faf192dfb90f2
WHEEL=hls4ml-$VERSION-py3-none-any.whl
SRC=hls4ml/templates/vivado/ap_types
LICENSE=hls4ml-$VERSION.dist-info/licenses/LICENSE
HEADERS="ap_common.h ap_decl.h ap_fixed.h ap_fixed_base.h ap_fixed_ref.h ap_fixed_special.h
         ap_int.h ap_int_base.h ap_int_ref.h ap_int_special.h etc/ap_private.h"
PIN="hls4ml==$VERSION sha256=$SHA256"
STAMP="$DEST/.rfpga-pin"

complete() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PIN" ] && [ -f "$DEST/LICENSE" ] || return 1
  for h in $HEADERS; do [ -f "$DEST/$h" ] || return 1; done
}
if complete; then exit 0; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ap-types.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -n "${HLS4ML_WHEEL:-}" ]; then
  cp "$HLS4ML_WHEEL" "$tmp/$WHEEL"
elif ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: "hls4ml==$VERSION" -d "$tmp" >&2; then
  echo "error: could not download hls4ml==$VERSION with pip (offline? set HLS4ML_WHEEL to the wheel's path)" >&2
  exit 1
fi
if [ ! -f "$tmp/$WHEEL" ]; then
  echo "error: pip did not produce $WHEEL" >&2
  exit 1
fi
if ! echo "$SHA256  $tmp/$WHEEL" | sha256sum --quiet -c - >/dev/null 2>&1; then
  echo "error: $WHEEL has sha256 $(sha256sum "$tmp/$WHEEL" | cut -d' ' -f1), expected $SHA256" >&2
  exit 1
fi
members=("$LICENSE")
for h in $HEADERS; do members+=("$SRC/$h"); done
"$PY" - "$tmp/$WHEEL" "$tmp/x" "${members[@]}" <<'PYEOF'
import sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    missing = [n for n in names if n not in z.namelist()]
    if missing:
        sys.exit("error: not in the wheel: " + ", ".join(missing))
    for n in names:
        z.extract(n, out)
PYEOF
mkdir -p "$tmp/out/etc"
for h in $HEADERS; do cp "$tmp/x/$SRC/$h" "$tmp/out/$h"; done
cp "$tmp/x/$LICENSE" "$tmp/out/LICENSE"
echo "$PIN" > "$tmp/out/.rfpga-pin"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/out" "$DEST"
echo "ap_types headers (Apache-2.0, from hls4ml $VERSION) in $DEST"
