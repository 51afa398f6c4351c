"""Validates an rfpga core on its board (written by `rfpga board`): top-1 accuracy on the CIFAR-10
test set, bit-for-bit agreement of every logit with rfpga's simulator (expected/), and images/s.

On the board (PYNQ, with rfpga.bit and rfpga.hwh beside this file):
    python3 validate.py --cifar test_batch.bin
Off the board, the same buffers through rfpga's C simulation of the core:
    python3 validate.py --csim PROJECT/csim/rfpga_csim_threaded --cifar test_batch.bin --images 100

--truncated-first WORDS first sends a transfer that ends WORDS words into its second image (an
aborted transfer): the first image must come back exact, the second marked partial, and the
images after it exact (the core realigned). Exit status 1 on any mismatch.
"""

import argparse
import os
import sys

import numpy as np

from rfpga_driver import HERE, CsimDma, Layout, Rfpga, pack, unpack


def read_cifar(path, n):
    """Images (N, 32, 32, 3) uint8 and labels from the CIFAR-10 binary test batch."""
    rec = 1 + 3 * 32 * 32
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % rec:
        sys.exit(f"{path}: {data.size} bytes, not a CIFAR-10 binary batch ({rec} bytes a record)")
    data = data.reshape(-1, rec)[:n]
    return data[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), data[:, 0]


def read_rows(path):
    with open(path) as f:
        return np.array([[int(v) for v in line.split()] for line in f if line.strip()], dtype=np.int64)


def truncated_first(core, images, words, expected):
    """One transfer of image 0 whole and image 1 cut to `words` words: image 0 exact, image 1
    marked; returns the mismatches."""
    layout = core.layout
    data = pack(layout, images[:2])[: (layout.pixels + words) * layout.in_bytes]
    outs, _ = core.dma.transfers([data], [core.out_size(2)])
    raw, partial = unpack(layout, outs[0], 2)
    bad = int(not np.array_equal(raw[0], expected[0])) + int(partial[0]) + int(not partial[1])
    print(f"truncated transfer ({layout.pixels} + {words} words): image 0 {'exact' if bad == 0 else 'WRONG'}, "
          f"image 1 {'marked partial' if partial[1] else 'NOT marked'}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar", required=True, help="CIFAR-10 test_batch.bin (the binary release)")
    ap.add_argument("--images", type=int, default=10000, help="test images to run (default: all)")
    ap.add_argument("--batch", type=int, default=None, help="images per DMA transfer (default: the package's)")
    ap.add_argument("--bit", default=os.path.join(HERE, "rfpga.bit"), help="the bitstream (board only)")
    ap.add_argument("--csim", default=None, help="run through this C-simulation executable instead of the board")
    ap.add_argument("--truncated-first", type=int, default=0, metavar="WORDS", help="first send a transfer cut WORDS words into its second image")
    a = ap.parse_args()

    layout = Layout()
    if a.csim:
        dma = CsimDma(a.csim, layout)
    else:
        from rfpga_driver import PynqDma

        dma = PynqDma(a.bit, layout)
        dma.reset()
    core = Rfpga(dma, layout)
    images, labels = read_cifar(a.cifar, a.images)
    expected = read_rows(os.path.join(HERE, layout.cfg["expected"]["logits"]))
    bad = 0
    if a.truncated_first:
        if not 0 < a.truncated_first < layout.pixels:
            sys.exit(f"--truncated-first: expected 1 to {layout.pixels - 1} words")
        bad += truncated_first(core, images, a.truncated_first, expected)
    raw, _ = core.predict(images, a.batch)
    n = min(len(raw), len(expected))
    mismatches = int((raw[:n] != expected[:n]).any(axis=1).sum())
    top1 = 100.0 * float((raw.argmax(axis=1) == labels[: len(raw)]).mean())
    s = core.stats
    where = "C simulation" if a.csim else "board"
    print(f"{len(raw)} images in {s['transfers']} transfer{'' if s['transfers'] == 1 else 's'} ({where}): top-1 {top1:.2f}% "
          f"(CIFAR-10 test set); {mismatches} of {n} images differ from the simulator's logits")
    if not a.csim:
        print(f"{s['images_per_s']:.1f} images/s over the DMA transfers; one image alone: {1e3 * core.latency(images[0]):.3f} ms")
    bad += mismatches
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
