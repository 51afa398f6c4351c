#!/usr/bin/env python3
"""The README's deck table (issue #16) from the runs themselves, so no figure is copied by hand.

usage: deck-table.py TEACHER_RUN TEACHER_FROZEN_DIR SKIPS_SWEEP SKIPLESS_SWEEP PART > table.md

TEACHER_RUN: the float teacher (train/summary.json). TEACHER_FROZEN_DIR: holds the teacher
frozen two ways (w16/ and ptq83/), each with sim.json and estimate-PART.json. The two sweeps'
folders hold `rfpga summarize` output (summary.csv, summary.md, timing.md). A configuration
with no finished run is listed as such, never left out.
"""
import csv
import json
import os
import statistics
import sys

from rfpga_files import check_header


def load(path):
    with open(path) as f:
        return json.load(f)


def groups(sweep):
    """summary.csv rows keyed by (skips, kd), with their timing.md row."""
    out = {}
    path = os.path.join(sweep, "summary.csv")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for row in csv.DictReader(f):
            out[(row["skips"], row["kd"])] = row
    # C-sim of each finished run's generated HLS (g++, the real ap_types): images passed per run.
    runs = os.path.join(sweep, "runs")
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        result = os.path.join(runs, name, "result.json")
        if os.path.exists(os.path.join(runs, name, "done.json")) and os.path.exists(result):
            r = load(result)
            check_header(result, r, "rfpga-sweep-result", 1)
            key = (r["config"]["skips"], r["config"].get("kd") or "")
            if key in out:
                # A run without a C-sim count shows as such, so a list never looks complete.
                passed = r.get("csim_images_passed")
                out[key].setdefault("csim", []).append("—" if passed is None else str(passed))
    timing = os.path.join(sweep, "timing.md")
    if os.path.exists(timing):
        for line in open(timing):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 9 and cells[0].startswith("ResNet"):
                key = (cells[2], "" if cells[3] == "—" else cells[3])
                if key in out:
                    # Mean, then lowest–highest when more than one run finished.
                    out[key]["minutes"] = cells[5] + (f" ({cells[6]}–{cells[7]})" if int(cells[4]) > 1 else "")
    return out


def recipe(sweep):
    """How the sweep's students trained, from the train.json of its first run with one."""
    runs = os.path.join(sweep, "runs")
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        path = os.path.join(runs, name, "train", "train.json")
        if os.path.exists(path):
            t = load(path)
            sched = t["schedule"]["kind"] + (f" (warm-up {t['schedule']['warmup_frac']:.0%} of the steps)" if "warmup_frac" in t["schedule"] else "")
            start = "the teacher's weights" if (t.get("distill") or {}).get("init_from_teacher") else "random weights"
            return (f"from {start}, {t['epochs']} epochs, SGD lr {t['lr']} {sched}, label smoothing {t['label_smoothing']}, "
                    f"QAT from epoch {t['qat_start']}, STE {t['quant']['ste']}")
    return None


def pm(mean, std):
    return f"{float(mean):.2f}" + (f" ± {float(std):.2f}" if std else "")


def resources(row, part):
    u = [float(row[f"{part}_{r}_percent"]) for r in ("bram_18k", "dsp", "ff", "lut")]
    runs = int(row["runs"])
    fits = int(row[f"{part}_fits"])
    return f"{u[0]:.1f} / {u[1]:.1f} / {u[2]:.1f} / {u[3]:.1f}", f"{fits}/{runs}", f"{float(row[f'{part}_images_per_s']):.1f}"


def estimate_cells(est):
    u = est["utilization_percent"]
    return (f"{u['bram_18k']:.1f} / {u['dsp']:.1f} / {u['ff']:.1f} / {u['lut']:.1f}", "1/1" if est["fits"] else "0/1", f"{est['images_per_s']:.1f}")


def main():
    teacher_run, teacher_frozen, skips_sweep, skipless_sweep, part = sys.argv[1:6]
    t = load(os.path.join(teacher_run, "summary.json"))
    # Epoch wall times: the teacher trained across sessions beside other work, so its total is
    # shown with the median epoch, which a pause or a busy machine does not move.
    with open(os.path.join(teacher_run, "metrics.jsonl")) as f:
        median = statistics.median(json.loads(line)["seconds"] for line in f if line.strip())
    teacher_time = f"{t['train_seconds'] / 60:.0f} min wall; median epoch {median:.0f} s ({t['epochs']} epochs, float)"
    rows = []
    published = {
        "w16": "90.68 ± 0.12 (deck, float); 91.25 (He et al.)",
        "ptq83": "—",
        ("keep", "mse"): "91.56 ± 0.15 (deck)",
        ("shorten", "mse"): "no loss against kept skips (Tailor)",
        ("remove", "mse"): "about 89.5: −2 from 91.55 (deck); no loss for shallow ResNets (Tailor)",
        ("none", "none"): "—",
        ("none", "mse"): "—",
    }
    for sub, label in (("w16", "teacher, frozen at `ap_fixed<16,6,AP_RND,AP_SAT>` weights"), ("ptq83", "teacher, post-training quantized to `<8,3>` weights and activations")):
        d = os.path.join(teacher_frozen, sub)
        if os.path.exists(os.path.join(d, "sim.json")):
            sim = load(os.path.join(d, "sim.json"))
            res, fits, ips = estimate_cells(load(os.path.join(d, f"estimate-{part}.json")))
            rows.append((label, "1", f"{100 * t['final_test_acc']:.2f}", f"{sim['top1']:.2f}", published[sub], "—", res, fits, ips, teacher_time))
    lines = [
        f"| ResNet-20 | runs | test top-1 % (libtorch, as trained) | frozen, simulated top-1 % | published top-1 % (lossless CIFAR-10) | C-sim images passed per run | {part} BRAM / DSP / FF / LUT % | fits | images/s | training min per run |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    s, sl = groups(skips_sweep), groups(skipless_sweep)
    wanted = [
        (s, ("keep", "mse"), "QAT `<8,3>`, skips kept, KD (the teacher's QAT version)"),
        (s, ("shorten", "mse"), "QAT `<8,3>`, skips shortened one by one, KD"),
        (s, ("remove", "mse"), "QAT `<8,3>`, skips removed one by one, KD"),
        (sl, ("none", "none"), "QAT `<8,3>`, skipless from random weights, no KD"),
        (sl, ("none", "mse"), "QAT `<8,3>`, skipless from random weights, KD"),
    ]
    for g, key, label in wanted:
        row = g.get(key)
        if row is None:
            lines.append(f"| {label} | 0 | not finished | | {published[key]} | | | | | |")
            continue
        res, fits, ips = resources(row, part)
        lines.append(
            f"| {label} | {row['runs']} | {pm(row['trained_top1_mean'], row['trained_top1_std'])} | {pm(row['frozen_top1_mean'], row['frozen_top1_std'])} | {published[key]} | {', '.join(row.get('csim', [])) or '—'} | {res} | {fits} | {ips} | {row.get('minutes', '—')} |"
        )
    print("\n".join(lines))
    print()
    print(f"Test top-1 on all {t['test_images']:,} test images of the JPEG copy of CIFAR-10 (about 1.5–3 points below lossless figures); mean ± sample std over seeds. Resources: `rfpga estimate` at 1 lane per convolution (a model of the generated code, not synthesis).")
    print()
    for sweep, who in ((skips_sweep, "the students that keep, remove or shorten skips"), (skipless_sweep, "the skipless students, KD and no KD alike")):
        r = recipe(sweep)
        if r:
            print(f"Recipe of {who} ({sweep}/runs/*/train/train.json): {r}.")
    print()
    print("Commands: `make deck-teacher` (the teacher), `make deck` (the students of sweeps/deck20.toml and sweeps/deck20-skipless.toml; resumable), `make deck-figures` (this table, docs/deck/*.svg and the per-sweep summaries and timings in docs/deck/).")
    print()
    keep = s.get(("keep", "mse"))
    saved = False
    for key, verb in ((("remove", "mse"), "Removing"), (("shorten", "mse"), "Shortening")):
        row = s.get(key)
        if keep is None or row is None:
            continue
        change = []
        for r, name in (("bram_18k", "BRAM"), ("ff", "FF"), ("lut", "LUT")):
            k, c = float(keep[f"{part}_{r}_percent"]), float(row[f"{part}_{r}_percent"])
            change.append(f"{name} {100 * (c - k) / k:+.1f} %")
        top1 = float(row["frozen_top1_mean"]) - float(keep["frozen_top1_mean"])
        saved = True
        print(f"{verb} the skips against keeping them (estimate, same <8,3> formats): {', '.join(change)}; frozen top-1 {top1:+.2f} points.")
    if saved:
        print()
    print("Published figures, on lossless CIFAR-10 (the table's published column): the deck's ResNet-20 float 90.68 ± 0.12 % and QAT `<8,3>` 91.56 ± 0.15 %; its iterative removal from a 91.55 % `<8,3>` ResNet-20 teacher lost about 2 points (the prior work it followed: +1). Tailor (Weng et al., TRETS 2024): removal keeps accuracy for shallow ResNets and hurts deep ones, shortening keeps it; up to 34 % BRAM, 13 % FF and 16 % LUT saved on hls4ml-style dataflow designs.")
    print()
    # The per-skip curves as summarize wrote them.
    md = os.path.join(skips_sweep, "summary.md")
    if os.path.exists(md):
        text = open(md).read()
        start = text.find("Top-1 % (test, during training) after each skip change")
        if start >= 0:
            end = text.find("\n\n**", start)
            print(text[start:end if end >= 0 else len(text)].strip())


if __name__ == "__main__":
    main()
