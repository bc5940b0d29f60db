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
/usr/bin/python3 -c "print('2 groups / 1 group: %.2fx' % (${tph[2]} / ${tph[1]}))"
