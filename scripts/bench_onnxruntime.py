"""onnxruntime's float inference speed on the images rfpga fed its network (`rfpga eval RUN
--save-logits DIR`), for `make bench-sim` (scripts/bench-sim.sh).

Usage: .venv-onnx/bin/python scripts/bench_onnxruntime.py MODEL.onnx DIR --threads T
       [--batches 1,16,64,256] [--repeats 3]

Every batch size in --batches is timed over all images of DIR, --repeats times after one
untimed pass; onnxruntime gets its best (batch, repeat). Graph optimizations at their highest
level, `intra_op_num_threads` = T, one inter-op thread. Also checks that its top-1 equals
rfpga's float top-1 on the same images (a wrong model would make the timing meaningless).
Prints one JSON line.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort

from rfpga_files import check_header


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("dir")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batches", default="1,16,64,256")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    meta = json.load(open(f"{a.dir}/logits.json"))
    check_header(f"{a.dir}/logits.json", meta, "rfpga-logits", 1)
    n, c, h, w = meta["shape"]
    x = np.fromfile(f"{a.dir}/inputs.f32", dtype="<f4").reshape(n, c, h, w)
    want = np.fromfile(f"{a.dir}/logits.f32", dtype="<f4").reshape(n, meta["classes"])
    labels = np.loadtxt(f"{a.dir}/labels.txt", dtype=np.int64).reshape(n)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    per_batch = {}
    best = None
    for b in [int(s) for s in a.batches.split(",")]:
        run = lambda: np.concatenate([sess.run(["logits"], {"input": x[i : i + b]})[0] for i in range(0, n, b)])
        got = run()
        agree = int((got.argmax(1) == want.argmax(1)).sum())
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        ips = n / min(times)
        per_batch[b] = round(ips, 1)
        if best is None or ips > best[1]:
            best = (b, ips, agree, float((got.argmax(1) == labels).mean() * 100))
    print(json.dumps({
        "engine": "onnxruntime " + ort.__version__ + " float32",
        "images": int(n),
        "threads": a.threads,
        "images_per_s": round(best[1], 1),
        "best_batch": best[0],
        "images_per_s_by_batch": per_batch,
        "top1": best[3],
        "same_predictions_as_rfpga_float": best[2],
    }))


main()
