#!/usr/bin/env bash
# mdBook, pinned, built from crates.io into .tools/mdbook (git-ignored) for `make docs`.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.5.4
BIN=.tools/mdbook/bin/mdbook
if [ -x "$BIN" ] && "$BIN" --version | grep -q "v$VERSION"; then
  exit 0
fi
cargo install mdbook --version "$VERSION" --locked --root .tools/mdbook --quiet
"$BIN" --version
