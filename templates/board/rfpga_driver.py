"""PYNQ driver for an rfpga core (written by `rfpga board`).

The core reads one AXI-stream word per pixel and writes one word per logit; a batch of images is
one DMA transfer each way (TLAST on the batch's last input word comes back on its last logit).
Everything about the stream layout comes from rfpga_board.json beside this file.

    from rfpga_driver import Rfpga, Layout, PynqDma
    core = Rfpga(PynqDma("rfpga.bit"))
    raw, logits = core.predict(images)      # images: uint8, (N, 32, 32, 3) (height, width, channel)
    print(core.stats)                       # images/s and latency of the DMA transfers

Packing and unpacking need numpy only, so they run off the board too: with CsimDma the same
byte buffers go through rfpga's C simulation of the core instead of a DMA.
"""

import json
import os
import subprocess
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BOARD_FORMAT, BOARD_VERSION = "rfpga-board", 1


class Layout:
    """The stream layout and number formats of the core (rfpga_board.json)."""

    def __init__(self, path=os.path.join(HERE, "rfpga_board.json")):
        with open(path) as f:
            cfg = json.load(f)
        if cfg.get("format") != BOARD_FORMAT or cfg.get("version") != BOARD_VERSION:
            raise ValueError(f"{path}: expected format {BOARD_FORMAT} version {BOARD_VERSION}, found "
                             f"{cfg.get('format')} version {cfg.get('version')}")
        self.cfg = cfg
        i, o = cfg["input"], cfg["output"]
        self.height, self.width, self.channels = i["height"], i["width"], i["channels"]
        self.pixels = self.height * self.width
        self.in_format, self.out_format = i["format"], o["format"]
        self.in_bytes, self.out_bytes = i["word_bits"] // 8, o["word_bits"] // 8
        self.classes = o["classes"]
        self.batch = cfg["batch"]
        # The normalization exactly as rfpga computes it, in float32 (bit patterns, not decimals).
        self.scale = np.array(i["scale_f32_bits"], dtype=np.uint32).view(np.float32)
        self.offset = np.array(i["offset_f32_bits"], dtype=np.uint32).view(np.float32)
        # A partial image's words: the top bit of the word alone.
        self.marker = 1 << (8 * self.out_bytes - 1)


def _range(fmt):
    w = fmt["width"]
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if fmt["signed"] else (0, (1 << w) - 1)


def to_fixed(fmt, x):
    """The raw integers of float32 values x converted to fmt as ap_fixed's conversion from a
    double does (x is exact in a double; so is x * 2^frac, and the rounding below)."""
    v = np.asarray(x, dtype=np.float32).astype(np.float64) * 2.0 ** fmt["frac"]
    mode = fmt["rounding"]
    if mode == "Trn":
        r = np.floor(v)
    elif mode == "TrnZero":
        r = np.trunc(v)
    elif mode == "Rnd":
        r = np.floor(v + 0.5)
    elif mode == "RndZero":
        r = np.where(v >= 0, np.ceil(v - 0.5), np.floor(v + 0.5))
    elif mode == "RndMinInf":
        r = np.ceil(v - 0.5)
    elif mode == "RndInf":
        r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))
    elif mode == "RndConv":
        r = np.rint(v)
    else:
        raise ValueError(f"unknown rounding {mode}")
    lo, hi = _range(fmt)
    r = r.astype(np.int64)
    over = fmt["overflow"]
    if over == "Sat":
        return np.clip(r, lo, hi)
    if over == "SatSym":
        return np.clip(r, -hi if fmt["signed"] else lo, hi)
    if over == "SatZero":
        return np.where((r < lo) | (r > hi), 0, r)
    if over == "Wrap":
        return (r - lo) % (1 << fmt["width"]) + lo
    raise ValueError(f"unknown overflow {over}")


def normalize(layout, images):
    """uint8 images (N, H, W, C) -> float32, (pixel * scale + offset) per channel: two float32
    roundings, no fused multiply-add, as rfpga computes it."""
    x = np.asarray(images, dtype=np.uint8).astype(np.float32)
    return (x * layout.scale + layout.offset).astype(np.float32)


def pack(layout, images):
    """The input transfer's bytes for uint8 images (N, H, W, C): one word per pixel, raster
    order, channel c in bits [c*W, c*W + W) as the raw two's-complement bits of the input format,
    little-endian words."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (layout.height, layout.width, layout.channels):
        raise ValueError(f"images: expected shape (N, {layout.height}, {layout.width}, {layout.channels}), found {images.shape}")
    raw = to_fixed(layout.in_format, normalize(layout, images)).reshape(-1, layout.channels)
    w = layout.in_format["width"]
    mask = np.uint64((1 << w) - 1)
    if layout.in_bytes <= 8:
        word = np.zeros(raw.shape[0], dtype=np.uint64)
        for c in range(layout.channels):
            word |= (raw[:, c].astype(np.uint64) & mask) << np.uint64(c * w)
        return word.view(np.uint8).reshape(-1, 8)[:, : layout.in_bytes].reshape(-1).copy()
    out = np.zeros((raw.shape[0], layout.in_bytes), dtype=np.uint8)
    for c in range(layout.channels):
        u = raw[:, c].astype(np.uint64) & mask
        for b in range(w):
            pos = c * w + b
            out[:, pos // 8] |= (((u >> np.uint64(b)) & np.uint64(1)) << np.uint64(pos % 8)).astype(np.uint8)
    return out.reshape(-1)


def unpack(layout, data, images):
    """The output transfer's bytes -> (raw logits int64 (N, classes), partial mask (N,)): each
    word holds the logit's raw bits sign- (or zero-) extended; a partial image's words are all
    the marker."""
    data = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).reshape(-1)
    need = images * layout.classes * layout.out_bytes
    if data.size != need:
        raise ValueError(f"output transfer: {data.size} bytes, expected {need} ({images} images)")
    b = data.reshape(-1, layout.out_bytes).astype(np.uint64)
    word = np.zeros(b.shape[0], dtype=np.uint64)
    for k in range(min(layout.out_bytes, 8)):
        word |= b[:, k] << np.uint64(8 * k)
    partial = (word == np.uint64(layout.marker)).reshape(images, layout.classes).all(axis=1)
    w = layout.out_format["width"]
    low = (word & np.uint64((1 << w) - 1)).astype(np.int64)
    if layout.out_format["signed"]:
        low = np.where(low >= (1 << (w - 1)), low - (1 << w), low)
    return low.reshape(images, layout.classes), partial


def to_float(layout, raw):
    return raw.astype(np.float64) * 2.0 ** -layout.out_format["frac"]


class PynqDma:
    """The board: the overlay's AXI DMA (simple mode) and the GPIO that resets the core."""

    def __init__(self, bitfile=os.path.join(HERE, "rfpga.bit"), layout=None):
        from pynq import Overlay, allocate  # only on the board

        self.layout = layout or Layout()
        self.overlay = Overlay(bitfile)
        self.dma = getattr(self.overlay, self.layout.cfg["dma"])
        self.gpio = getattr(self.overlay, self.layout.cfg["reset_gpio"])
        self._allocate = allocate
        self._buffers = {}

    def _buffer(self, key, nbytes):
        if self._buffers.get(key) is None or self._buffers[key].size != nbytes:
            self._buffers[key] = self._allocate(shape=(nbytes,), dtype=np.uint8)
        return self._buffers[key]

    def reset(self, timeout=1.0):
        """Holds the core in reset (ap_rst_n low) while the DMA soft-resets (DMACR bit 2, both
        channels), then releases it: no word of an aborted transfer reaches the fresh core."""
        self.gpio.channel1.write(0, 1)
        self.dma.write(0x00, 0x4)
        end = time.perf_counter() + timeout
        while self.dma.read(0x00) & 0x4:
            if time.perf_counter() > end:
                raise RuntimeError("the DMA's soft reset did not complete (a stream may be stuck): reload the overlay")
        self.gpio.channel1.write(1, 1)
        self.dma.sendchannel.start()
        self.dma.recvchannel.start()

    def transfers(self, inputs, out_sizes):
        """One DMA transfer each way per input buffer; returns the output bytes and the seconds
        each pair took (receive posted first, so the core never waits for a buffer)."""
        outs, seconds = [], []
        for data, size in zip(inputs, out_sizes):
            src, dst = self._buffer("in", data.size), self._buffer("out", size)
            src[:] = data  # transfer() flushes it from the cache, wait() invalidates dst
            start = time.perf_counter()
            self.dma.recvchannel.transfer(dst)
            self.dma.sendchannel.transfer(src)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            seconds.append(time.perf_counter() - start)
            got = self.dma.recvchannel.transferred
            if got != size:
                raise RuntimeError(f"the DMA received {got} bytes, expected {size}")
            outs.append(np.array(dst))
        return outs, seconds


class CsimDma:
    """rfpga's C simulation of the core in place of the DMA: the same byte buffers, one transfer
    each way per input buffer, all through one run of the core (as the board keeps its state
    between transfers). `exe`: a testbench built by rfpga (PROJECT/csim/rfpga_csim_threaded)."""

    def __init__(self, exe, layout=None):
        self.exe = exe
        self.layout = layout or Layout()

    def reset(self):
        pass  # every run starts from reset

    def transfers(self, inputs, out_sizes):
        with tempfile.TemporaryDirectory() as tmp:
            args = []
            for k, data in enumerate(inputs):
                src, dst = os.path.join(tmp, f"in{k}.bin"), os.path.join(tmp, f"out{k}.bin")
                with open(src, "wb") as f:
                    f.write(np.asarray(data, dtype=np.uint8).tobytes())
                args.append(f"{src}:{dst}")
            start = time.perf_counter()
            run = subprocess.run([self.exe, "--raw"] + args, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if run.returncode != 0:
                raise RuntimeError(f"{self.exe} --raw failed ({run.returncode}): {run.stdout}{run.stderr}")
            outs = []
            for k, size in enumerate(out_sizes):
                with open(os.path.join(tmp, f"out{k}.bin"), "rb") as f:
                    out = np.frombuffer(f.read(), dtype=np.uint8)
                if out.size != size:
                    raise RuntimeError(f"transfer {k}: {out.size} output bytes, expected {size}")
                outs.append(out)
        return outs, [elapsed / len(inputs)] * len(inputs)


class Rfpga:
    """Runs images through the core: packs them, one transfer per batch, unpacks the logits."""

    def __init__(self, dma, layout=None):
        self.layout = layout or dma.layout
        self.dma = dma
        self.stats = {}

    def out_size(self, images):
        return images * self.layout.classes * self.layout.out_bytes

    def predict(self, images, batch=None):
        """Raw and float logits of uint8 images (N, H, W, C), in transfers of `batch` images
        (default and at most: the batch the DMA's length register was built for)."""
        images = np.asarray(images)
        batch = min(batch or self.layout.batch, self.layout.batch)
        chunks = [images[k : k + batch] for k in range(0, len(images), batch)]
        inputs = [pack(self.layout, c) for c in chunks]
        outs, seconds = self.dma.transfers(inputs, [self.out_size(len(c)) for c in chunks])
        raws = []
        for c, out in zip(chunks, outs):
            raw, partial = unpack(self.layout, out, len(c))
            if partial.any():
                raise RuntimeError(f"the core marked {int(partial.sum())} image(s) partial in a whole transfer")
            raws.append(raw)
        raw = np.concatenate(raws) if raws else np.zeros((0, self.layout.classes), np.int64)
        total = sum(seconds)
        self.stats = {"images": len(images), "transfers": len(chunks), "seconds": total,
                      "images_per_s": len(images) / total if total > 0 else float("nan")}
        return raw, to_float(self.layout, raw)

    def latency(self, image):
        """Seconds for one image alone (one transfer each way)."""
        _, seconds = self.dma.transfers([pack(self.layout, np.asarray(image)[None])], [self.out_size(1)])
        return seconds[0]
