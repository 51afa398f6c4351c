#!/usr/bin/env bash
# `make gpu-build`: everything the GPU machine needs, built here (it has no Rust toolchain and no
# network). Its image has PyTorch 2.11.0+cu130, which tch 0.24.0 matches (0.26 needs 2.13), so:
#   1. torch 2.11.0's PyPI wheel (pinned by hash), unpacked to .gpu/torch211 (lib + include);
#   2. the committed tree (git archive HEAD) in .gpu/src with tch/torch-sys pinned to 0.24.0,
#      built with RFPGA_LINK_TORCH_CUDA=1 so libtorch_cuda is linked (crates/rfpga-cli/build.rs);
#   3. the stripped binary to .gpu/p3/rfpga, and the CIFAR-10 tarball from ../shared split into
#      three parts, .gpu/p1, .gpu/p2, .gpu/p3, each small enough to travel with one device call
#      (at most 64 MiB a call; docs/howto/gpu.md gives the three calls).
# Idempotent; offline once the wheel and crates are fetched. The GPU run is scripts/gpu/train-he.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu
WHEEL=torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA=7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a
TARBALL=${CIFAR_TARBALL:-../shared/data/cifar10/cifar-10-binary.tar.xz}
mkdir -p $G
if [ ! -f $G/torch211/torch/lib/libtorch_cuda.so ]; then
  if ! echo "$WHEEL_SHA  $G/$WHEEL" | sha256sum -c --quiet 2>/dev/null; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 torch==2.11.0 -d $G
    echo "$WHEEL_SHA  $G/$WHEEL" | sha256sum -c --quiet
  fi
  rm -rf $G/torch211.tmp && mkdir -p $G/torch211.tmp
  unzip -q $G/$WHEEL 'torch/lib/*' 'torch/include/*' 'torch/share/*' -d $G/torch211.tmp
  rm -rf $G/torch211 && mv $G/torch211.tmp $G/torch211
fi
# The committed tree, with only changed files rewritten (cargo rebuilds by modification time).
rm -rf $G/src.new && mkdir -p $G/src.new
git archive HEAD | tar -x -C $G/src.new
sed -i 's/^tch = "=0.26.0"/tch = "=0.24.0"/; s/^torch-sys = "=0.26.0"/torch-sys = "=0.24.0"/' $G/src.new/Cargo.toml
grep -q '^tch = "=0.24.0"' $G/src.new/Cargo.toml || { echo "build.sh: could not pin tch 0.24.0 in Cargo.toml" >&2; exit 1; }
rm -rf $G/src.new/.cargo
python3 - $G/src.new $G/src <<'PY'
import filecmp, os, shutil, sys
new, old = sys.argv[1:]
for root, _, files in os.walk(new):
    for f in files:
        a = os.path.join(root, f)
        b = os.path.join(old, os.path.relpath(a, new))
        if not (os.path.exists(b) and filecmp.cmp(a, b, shallow=False)):
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copy(a, b)  # modification time now: cargo sees the change
for root, _, files in os.walk(old):
    if os.sep + "target" in root:
        continue
    for f in files:
        b = os.path.join(root, f)
        if f != "Cargo.lock" and not os.path.exists(os.path.join(new, os.path.relpath(b, old))):
            os.remove(b)
PY
rm -rf $G/src.new
(cd $G/src && LIBTORCH="$PWD/../torch211/torch" RFPGA_LINK_TORCH_CUDA=1 \
  cargo build --release -p rfpga-cli --target-dir "$PWD/../target")
readelf -d $G/target/release/rfpga | grep -q 'NEEDED.*libtorch_cuda.so' \
  || { echo "build.sh: the binary does not link libtorch_cuda.so" >&2; exit 1; }
rm -rf $G/p1 $G/p2 $G/p3 $G/parts && mkdir -p $G/p1 $G/p2 $G/p3 $G/parts
split -n 3 -d "$TARBALL" $G/parts/cifar.tar.xz.
mv $G/parts/cifar.tar.xz.00 $G/p1/; mv $G/parts/cifar.tar.xz.01 $G/p2/; mv $G/parts/cifar.tar.xz.02 $G/p3/
sha256sum "$TARBALL" | awk '{print $1"  cifar-10-binary.tar.xz"}' > $G/p3/cifar.sha256
cp "$(dirname "$TARBALL")/SHA256SUMS" $G/p3/SHA256SUMS
strip -o $G/p3/rfpga $G/target/release/rfpga
du -sh $G/p1 $G/p2 $G/p3
echo "ready: .gpu/p1 .gpu/p2 .gpu/p3 (docs/howto/gpu.md: three device calls)"
