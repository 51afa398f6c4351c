#!/bin/bash
# `make test-slurm` (part of `make test`): the tiny sweep through a real single-node Slurm
# started here (scripts/slurm-local.sh) and through the local engine; both summaries must be
# identical. Then one run's outputs are removed and it is resubmitted alone (--only), as a user
# resubmits a failed array task. The cluster is stopped by PID however the script ends.
set -euo pipefail
RFPGA=${RFPGA:-target/release/rfpga}
SWEEP=sweeps/tiny.toml
T=$(mktemp -d /tmp/rfpga-slurm-test.XXXXXX)
chmod 755 "$T" # munged wants every folder above its socket open to all
stop() { scripts/slurm-local.sh stop "$T/cluster" || true; rm -rf "$T"; }
trap stop EXIT
scripts/slurm-local.sh install
conf=$(scripts/slurm-local.sh start "$T/cluster")
eval "$conf"
export SLURM_CONF

echo "== local engine"
"$RFPGA" sweep "$SWEEP" --engine local --out "$T/local"
"$RFPGA" summarize "$T/local" >/dev/null

echo "== slurm engine"
out=$(timeout 600 "$RFPGA" sweep "$SWEEP" --engine slurm --wait --out "$T/slurm")
echo "$out"
# One teacher array, and one student array per teacher, each waiting for its own teacher's task.
[ "$(echo "$out" | grep -c "submitted students (1 array tasks)")" = 2 ] || { echo "FAIL: expected a student array per teacher"; exit 1; }
grep -q '"level":"teachers","runs":\["r8A-s0-float-keep","r8A-s1-float-keep"\]' "$T/slurm/slurm/submissions.jsonl" || { echo "FAIL: teachers' array"; exit 1; }
"$RFPGA" sweep status "$SWEEP" --out "$T/slurm"
"$RFPGA" summarize "$T/slurm" >/dev/null
for f in summary.md summary.csv; do
    diff "$T/local/$f" "$T/slurm/$f" || { echo "FAIL: $f differs between the local and the Slurm engine"; exit 1; }
done
echo "summaries identical: $(wc -l < "$T/slurm/summary.csv") lines of summary.csv"

echo "== a lost run resubmitted alone"
rm "$T/slurm/runs/r8A-s1-float-remove-hinton/done.json"
out=$(timeout 600 "$RFPGA" sweep "$SWEEP" --engine slurm --wait --out "$T/slurm" --only r8A-s1-float-remove-hinton)
echo "$out"
echo "$out" | grep -q "submitted students (1 array tasks)" || { echo "FAIL: expected one student task"; exit 1; }
echo "$out" | grep -q "submitted teachers" && { echo "FAIL: a finished teacher was resubmitted"; exit 1; }
"$RFPGA" summarize "$T/slurm" >/dev/null
diff "$T/local/summary.csv" "$T/slurm/summary.csv"
echo "== nothing left to submit"
"$RFPGA" sweep "$SWEEP" --engine slurm --out "$T/slurm" | grep -q "nothing to submit"
echo "test-slurm: passed"
