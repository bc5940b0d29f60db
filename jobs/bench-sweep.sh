#!/usr/bin/env bash
# Sweep efficiency on this machine: trials per hour of one single-rank group
# against two single-rank groups (one thread per rank), on the same sweep.
# usage: jobs/bench-sweep.sh [CONFIG=inputs/fmnist-mlp-sweep.toml]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-inputs/fmnist-mlp-sweep.toml}
bin=${RANKSWEEP:-build/ranksweep}
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A tph
for n in 1 2; do
  OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to core -np "$n" "$bin" sweep "$config" --group-size 1 \
    --out "$tmp/g$n" >/dev/null
  tph[$n]=$(/usr/bin/python3 -c "
import h5py; f = h5py.File('$tmp/g$n/study.h5', 'r')
print(len(f['trials/id']) / f.attrs['sweep_seconds'] * 3600)")
  printf '%d group(s): %.0f trials/hour\n' "$n" "${tph[$n]}"
done
/usr/bin/python3 - "$tmp/g1/study.h5" "$tmp/g2/study.h5" "${tph[1]}" "${tph[2]}" <<'PY'
import sys, h5py
one, two = (h5py.File(p, "r")["trials"] for p in sys.argv[1:3])
t1, t2 = float(sys.argv[3]), float(sys.argv[4])
print(f"2 groups / 1 group: {t2 / t1:.2f}x")
# Where the rest goes: the schedule (the one-group trial times dealt out in
# trial order to whichever of two groups is free first) and the slowdown of
# each trial when two run side by side on the machine's two cores.
w1 = dict(zip(one["id"][()], one["wall_seconds"][()]))
w2 = dict(zip(two["id"][()], two["wall_seconds"][()]))
free = [0.0, 0.0]
for i in sorted(w1):
    k = free.index(min(free))
    free[k] += w1[i]
print(f"  schedule bound with one-group trial times: {sum(w1.values()) / max(free):.2f}x; "
      f"trials side by side take {sum(w2.values()) / sum(w1.values()):.2f}x as long as alone")
PY
