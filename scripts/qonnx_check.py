"""qonnx's executor on an rfpga QONNX export against rfpga's simulator, bit for bit.

Usage: .venv-onnx/bin/python scripts/qonnx_check.py MODEL.onnx VECTORS_DIR [IMAGES]

VECTORS_DIR is `rfpga sim FROZEN --export-vectors DIR` (or a project's vectors/): raw input
integers (HWC) and the simulator's raw logits per image. Each image goes in as raw·2^-F of the
input format (N×C×H×W float32); each output logit times 2^F of the logit format must be the
simulator's raw logit exactly. Prints one JSON line; exits 1 on any mismatch.
"""
import json
import re
import sys

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from rfpga_files import check_header


def frac(fmt):
    m = re.match(r"ap_u?fixed<(\d+),\s*(-?\d+)", fmt)
    return int(m.group(1)) - int(m.group(2))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model = ModelWrapper(sys.argv[1])
    d = sys.argv[2]
    meta = json.load(open(f"{d}/vectors.json"))
    check_header(f"{d}/vectors.json", meta, "rfpga-vectors", 1)
    h, w, c = meta["input_shape_hwc"]
    fin, fout = frac(meta["input_format"]), frac(meta["logit_format"])
    inputs = [list(map(int, l.split())) for l in open(f"{d}/inputs.txt")]
    logits = [list(map(int, l.split())) for l in open(f"{d}/logits.txt")]
    n = min(len(inputs), int(sys.argv[3]) if len(sys.argv) > 3 else len(inputs))
    # rfpga exports a static batch of 1 (qonnx and hls4ml refuse a symbolic one).
    exported = model.get_tensor_shape("input")
    if exported != [1, c, h, w]:
        sys.exit(f"{sys.argv[1]}: input shape {exported}, expected [1, {c}, {h}, {w}] (rfpga export qonnx's default --batch 1)")
    # qonnx's executor wants every shape known; it runs node by node (an onnxruntime session
    # per node), so all images go through as one batch.
    model.set_tensor_shape("input", [n, c, h, w])
    model.set_tensor_shape("logits", [n, len(logits[0])])
    model = model.transform(InferShapes())
    x = (np.array(inputs[:n], dtype=np.float64) * 2.0**-fin).reshape(n, h, w, c).transpose(0, 3, 1, 2).astype(np.float32)
    y = execute_onnx(model, {"input": x})["logits"].astype(np.float64).reshape(n, -1) * 2.0**fout
    raw = np.rint(y).astype(np.int64)
    want = np.array([row for row in logits[:n]], dtype=np.int64)
    not_integral = int((raw != y).sum())
    bad = raw != want
    mismatches = int(bad.sum())
    first = None
    if mismatches:
        i = int(np.argwhere(bad.any(axis=1))[0][0])
        first = {"image": i, "qonnx": raw[i].tolist(), "rfpga": want[i].tolist()}
    print(json.dumps({"images": n, "logits": n * len(logits[0]), "mismatches": mismatches, "not_integral": not_integral, "first_mismatch": first}))
    sys.exit(0 if mismatches == 0 and not_integral == 0 else 1)


main()
