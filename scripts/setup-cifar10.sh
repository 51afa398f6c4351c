#!/usr/bin/env bash
# Unpack the shared CIFAR-10 binary release into a git-ignored folder and verify every file.
# Idempotent: skips the unpack when all checksums already match.
set -euo pipefail
SRC=${1:-../shared/data/cifar10}
DEST=${2:-data}
OUT="$DEST/cifar-10-batches-bin"
if [ ! -f "$SRC/SHA256SUMS" ] || [ ! -f "$SRC/cifar-10-binary.tar.xz" ]; then
  echo "error: $SRC/cifar-10-binary.tar.xz or $SRC/SHA256SUMS not found (set CIFAR_SRC)" >&2
  exit 1
fi
if [ -d "$OUT" ] && (cd "$OUT" && sha256sum --quiet -c "$(realpath "$OLDPWD/$SRC/SHA256SUMS")") >/dev/null 2>&1; then
  exit 0
fi
mkdir -p "$DEST"
tmp=$(mktemp -d "$DEST/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$SRC/cifar-10-binary.tar.xz" -C "$tmp"
(cd "$tmp/cifar-10-batches-bin" && sha256sum --quiet -c "$(realpath "$OLDPWD/$SRC/SHA256SUMS")")
rm -rf "$OUT"
mv "$tmp/cifar-10-batches-bin" "$OUT"
echo "CIFAR-10 verified in $OUT"
