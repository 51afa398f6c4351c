"""onnxruntime on an exported model against rfpga's own logits (`rfpga eval RUN --save-logits DIR`).

Usage: .venv-onnx/bin/python scripts/onnx_check.py MODEL.onnx DIR [--rtol 1e-4]

Runs the ONNX model on DIR/inputs.f32 (the normalized images rfpga fed its network) and compares
with DIR/logits.f32: per image, max |ort - rfpga| <= rtol * max |rfpga| (relative to the
image's largest logit, so logits near zero do not blow the ratio up), and top-1 agreement.
Also checks the model with onnx.checker. Prints one JSON line; exits 1 on a failure.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

from rfpga_files import check_header


def main():
    args = sys.argv[1:]
    rtol = 1e-4
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    model_path, d = args
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    meta = json.load(open(f"{d}/logits.json"))
    check_header(f"{d}/logits.json", meta, "rfpga-logits", 1)
    n, c, h, w = meta["shape"]
    k = meta["classes"]
    x = np.fromfile(f"{d}/inputs.f32", dtype="<f4").reshape(n, c, h, w)
    want = np.fromfile(f"{d}/logits.f32", dtype="<f4").reshape(n, k)
    labels = np.loadtxt(f"{d}/labels.txt", dtype=np.int64).reshape(n)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(["logits"], {"input": x[i : i + 256]})[0] for i in range(0, n, 256)])
    err = np.abs(got - want).max(axis=1) / np.maximum(np.abs(want).max(axis=1), 1e-30)
    result = {
        "images": int(n),
        "max_relative_error": float(err.max()),
        "images_over_rtol": int((err > rtol).sum()),
        "rtol": rtol,
        "top1_onnxruntime": float((got.argmax(1) == labels).mean() * 100),
        "top1_rfpga": float((want.argmax(1) == labels).mean() * 100),
        "same_predictions": int((got.argmax(1) == want.argmax(1)).sum()),
    }
    print(json.dumps(result))
    sys.exit(0 if result["images_over_rtol"] == 0 else 1)


main()
