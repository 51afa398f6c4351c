#!/usr/bin/env bash
# Every training run of the skip-change variants (docs/howto/deck-experiments.md), the most
# informative first: the best variant's seeds (both early20 variants), its 60-epoch run, the
# second seeds that give four variants two seeds each, the 60-epoch run's second seed and its
# kept-skip reference at 60 epochs, the removal with restarts at the ramps' starts, each other
# variant's first seed, the rest.
# Finished runs are skipped and interrupted ones resumed, so this can be killed and started
# again at any time. Then `make skip-variants` builds the table.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RFPGA:-target/release/rfpga}
sweep() { "$R" sweep "sweeps/$1.toml" --engine local "${@:2}"; }
sweep early20 --only seed=0
sweep early20 --only skips=remove
sweep early20
sweep early60 --only seed=0
sweep sched20 --only skips=remove
sweep early60
sweep kept60 --only seed=0
sweep ramp20 --only skips=remove
sweep fold20-random --only seed=0
sweep sched20
sweep fold20-random
sweep kept60
sweep ramp20
