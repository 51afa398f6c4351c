#!/usr/bin/env bash
# CIFAR-10 (binary version) into DEST/cifar-10-batches-bin, checked, from either
#   --archive FILE  the official cifar-10-binary.tar.gz (md5 c32a1d4ab5d03f1284b67883e8d87530, as
#                   published with the dataset; CIFAR_ARCHIVE_MD5 overrides it for tests), or
#   SRC             a folder holding cifar-10-binary.tar.xz and SHA256SUMS (this project's copy).
# Usage: setup-cifar10.sh [--archive FILE] [SRC] [DEST]. Idempotent: nothing is unpacked again
# when DEST already holds a checked copy. Every file is checked: the archive's md5 or each file's
# sha256, and the layout (the six .bin files, whole 3073-byte records).
set -euo pipefail
ARCHIVE=${CIFAR_ARCHIVE:-}
if [ "${1:-}" = "--archive" ]; then ARCHIVE=$2; shift 2; fi
SRC=${1:-../shared/data/cifar10}
DEST=${2:-data}
OUT="$DEST/cifar-10-batches-bin"
FILES="data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin"
MD5=${CIFAR_ARCHIVE_MD5:-c32a1d4ab5d03f1284b67883e8d87530}

layout_ok() { # dir: the six files, each a whole number of 3073-byte records
  for f in $FILES; do
    [ -f "$1/$f" ] || { echo "$1/$f: missing" >&2; return 1; }
    local n; n=$(stat -c %s "$1/$f")
    if [ "$n" -eq 0 ] || [ $((n % 3073)) -ne 0 ]; then echo "$1/$f: $n bytes, not whole 3073-byte records" >&2; return 1; fi
  done
}

unpack() { # tar flag, archive; then the checks of "$@" in the unpacked folder
  local flag=$1 archive=$2; shift 2
  mkdir -p "$DEST"
  tmp=$(mktemp -d "$DEST/.unpack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  tar "-x${flag}f" "$archive" -C "$tmp"
  [ -d "$tmp/cifar-10-batches-bin" ] || { echo "error: $archive has no cifar-10-batches-bin/ folder (not the CIFAR-10 binary version)" >&2; exit 1; }
  layout_ok "$tmp/cifar-10-batches-bin" || { echo "error: $archive: not the CIFAR-10 binary layout (above)" >&2; exit 1; }
  "$@"
  rm -rf "$OUT"
  mv "$tmp/cifar-10-batches-bin" "$OUT"
  if [ -n "${STAMP:-}" ]; then echo "$STAMP" > "$OUT/.source"; fi
}

if [ -n "$ARCHIVE" ]; then
  [ -f "$ARCHIVE" ] || { echo "error: $ARCHIVE: no such file (the official cifar-10-binary.tar.gz, from the CIFAR-10 page of the University of Toronto)" >&2; exit 1; }
  STAMP="md5 $MD5"
  if [ -f "$OUT/.source" ] && [ "$(cat "$OUT/.source")" = "$STAMP" ] && layout_ok "$OUT" 2>/dev/null; then exit 0; fi
  got=$(md5sum "$ARCHIVE" | cut -d' ' -f1)
  [ "$got" = "$MD5" ] || { echo "error: $ARCHIVE: md5 $got, expected $MD5 (the published cifar-10-binary.tar.gz); download it again" >&2; exit 1; }
  unpack z "$ARCHIVE" true
  echo "CIFAR-10 from $ARCHIVE (md5 checked) in $OUT"
  exit 0
fi

if [ ! -f "$SRC/SHA256SUMS" ] || [ ! -f "$SRC/cifar-10-binary.tar.xz" ]; then
  if layout_ok "$OUT" 2>/dev/null; then exit 0; fi
  echo "error: no CIFAR-10: $SRC/cifar-10-binary.tar.xz not found. Download the official cifar-10-binary.tar.gz (CIFAR-10 page of the University of Toronto) and run \`make setup-data CIFAR_ARCHIVE=/path/to/cifar-10-binary.tar.gz\`" >&2
  exit 1
fi
SUMS=$(realpath "$SRC/SHA256SUMS")
if [ -d "$OUT" ] && (cd "$OUT" && sha256sum --quiet -c "$SUMS") >/dev/null 2>&1; then
  exit 0
fi
check_sums() { (cd "$tmp/cifar-10-batches-bin" && sha256sum --quiet -c "$SUMS"); }
unpack J "$SRC/cifar-10-binary.tar.xz" check_sums
echo "CIFAR-10 verified in $OUT"
