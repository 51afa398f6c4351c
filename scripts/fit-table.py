#!/usr/bin/env python3
"""The fit table of scripts/fit-tables.sh: one row per NAME|PART|FIT_OUTPUT|CSIM_LINE|VERDICT_LINE
argument, after the rows measured before the PE × SIMD architecture (docs/fit/before.md)."""
import re
import sys


def chosen(path):
    text = open(path).read()
    line = next((l for l in text.splitlines() if l.startswith("Chosen")), None)
    if line is None:
        return None
    num = lambda key: re.search(key + r" ([0-9.]+) %", line).group(1)
    return {
        "rate": re.search(r"([0-9.]+) images/s", line).group(1),
        "bram": num("BRAM_18K"), "dsp": num("DSP"), "ff": num("FF"), "lut": num("LUT"),
        "uram": num("URAM"), "lutmem": num("LUT as memory"),
        "binding": re.search(r"binding: ([^)]+)\)", line).group(1),
    }


print("""# The fastest designs that fit, before and after the PE × SIMD architecture

Written by `make fit-tables` (scripts/fit-tables.sh): `rfpga fit FROZEN --part PART --budget 80`
(every resource, SLICEM LUTs included, within 80 % of the part), then the chosen design
generated (`rfpga codegen FROZEN --design DESIGN --images 100`) and C-simulated with every
process a thread and every stream bounded at its depth, the 100 test images back to back
through one run of the free-running top (`rfpga csim PROJECT --threaded`), compared bit for bit
with the simulator. r20-keep and r20-remove are the deck's seed-0 students
(`sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-{keep,remove}-mse/frozen`, `<8,3>` weights and
activations); r56 and r110 are ResNet-56/110 `<8,3>` trained one epoch on 256 images (their
weights do not matter here, their shape does), r110w4 the same ResNet-110 with `<4,2>` weights
(activations `<8,3>`). ResNet-110's 1.72 M weights at 8 bits (13.8 Mbit) must live in BRAM or
LUTs (a ROM cannot be an UltraRAM, which has no initial contents): within 80 % of the ZCU104
that is at most 499 BRAM_18K (9.0 Mbit) plus the LUTs its processes leave (the fit table of
r110-keep shows how far it gets). "interval over slowest stage": the dataflow
simulation's interval against the slowest process alone. Every figure is an estimate of the
generated code (docs/explanation/estimate-constants.md), not synthesis; timing closure at 10 ns is not
estimated. Per-design Pareto tables: the files beside this one.
""")
print("| model | part | | images/s | most used | BRAM_18K | DSP | FF | LUT | URAM | LUT as memory | interval over slowest stage | threaded C-sim, back to back |")
print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
before = open("docs/fit/before.md").read().splitlines()
for line in before:
    if line.startswith("|") and not line.startswith("| model") and not line.startswith("|---"):
        print(line)
for arg in sys.argv[1:]:
    name, part, path, csim, verdict = arg.split("|", 4)
    c = chosen(path)
    over = re.search(r"interval ([+-][0-9.]+) % over it", verdict)
    if c is None:
        error = next((l for l in open(path).read().splitlines() if l.startswith("error:")), "error: ?")
        print(f"| {name} | {part} | after | no design fits ({error[len('error: '):]}) | | | | | | | | | {csim} |")
        continue
    print(f"| {name} | {part} | after | {c['rate']} | {c['binding']} | {c['bram']} % | {c['dsp']} % | {c['ff']} % | {c['lut']} % | {c['uram']} % | {c['lutmem']} % | {over.group(1) if over else '?'} % | {csim} |")
