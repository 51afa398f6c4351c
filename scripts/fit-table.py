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
        print(f"| {name} | {part} | after | no design fits | | | | | | | | | {csim} |")
        continue
    print(f"| {name} | {part} | after | {c['rate']} | {c['binding']} | {c['bram']} % | {c['dsp']} % | {c['ff']} % | {c['lut']} % | {c['uram']} % | {c['lutmem']} % | {over.group(1) if over else '?'} % | {csim} |")
