#!/usr/bin/env bash
# cargo-fuzz (pinned) for `make fuzz`. libFuzzer needs unstable rustc flags: on a stable
# toolchain scripts/fuzz.sh sets RUSTC_BOOTSTRAP=1 rather than fetching a nightly one.
# Idempotent; offline once installed.
set -euo pipefail
VERSION=0.12.0
if cargo fuzz --version 2>/dev/null | grep -q "cargo-fuzz $VERSION"; then
  echo "cargo-fuzz $VERSION ready"
  exit 0
fi
cargo install cargo-fuzz --version "$VERSION" --locked
cargo fuzz --version
