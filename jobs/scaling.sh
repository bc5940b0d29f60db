#!/usr/bin/env bash
# The scaling study on this machine with mpirun: jobs/slurm/scaling.sh --launcher mpirun (see its header).
#   bash jobs/scaling.sh [-n MAX_RANKS=2] [-c CONFIG=inputs/fmnist-mlp.toml] [-r REPS=3] [-o OUT=runs/scaling]
set -euo pipefail
cd "$(dirname "$0")/.."
max=2 config=inputs/fmnist-mlp.toml reps=3 out=runs/scaling
while getopts "n:c:r:o:" o; do
  case $o in n) max=$OPTARG ;; c) config=$OPTARG ;; r) reps=$OPTARG ;; o) out=$OPTARG ;; *) exit 2 ;; esac
done
exec bash jobs/slurm/scaling.sh --launcher mpirun --nodes 1 --ranks-per-node "$max" --reps "$reps" --out "$out" "$config"
