#!/usr/bin/env bash
# Strong and weak scaling of data-parallel training over 1..N ranks.
#   strong: the global batch stays GLOBAL_BATCH (each rank gets 1/N of it)
#   weak:   each rank keeps a batch of GLOBAL_BATCH (the global batch grows with N)
# Runs `ranksweep train` for one epoch on TRAIN samples per configuration and
# collects the training throughput (images/s, from each run.h5) and the phase
# timers into OUT.h5; then draws speedup and efficiency with plot_scaling.py.
#
# usage: jobs/scaling.sh [-n MAX_RANKS=2] [-c CONFIG=inputs/fmnist-cnn.toml] [-t THREADS_PER_RANK=1]
#                        [-s TRAIN=6400] [-b GLOBAL_BATCH=64] [-o OUT=runs/scaling.h5] [-l LAUNCHER]
# LAUNCHER defaults to "mpirun --oversubscribe --bind-to core -np"; under Slurm use -l "srun --mpi=pmix -n".
set -euo pipefail
cd "$(dirname "$0")/.."
max=2 config=inputs/fmnist-cnn.toml threads=1 train=6400 batch=64 out=runs/scaling.h5
launcher="mpirun --oversubscribe --bind-to core -np"
while getopts "n:c:t:s:b:o:l:" o; do
  case $o in
    n) max=$OPTARG ;; c) config=$OPTARG ;; t) threads=$OPTARG ;; s) train=$OPTARG ;;
    b) batch=$OPTARG ;; o) out=$OPTARG ;; l) launcher=$OPTARG ;; *) exit 2 ;;
  esac
done
bin=${RANKSWEEP:-build/ranksweep}
[[ -x $bin ]] || { echo "scaling: $bin not built (bash jobs/build.sh)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"

runs=()
for mode in strong weak; do
  for ((n = 1; n <= max; n++)); do
    gb=$batch
    [[ $mode == weak ]] && gb=$((batch * n))
    dir=$tmp/$mode-$n
    OMP_NUM_THREADS=$threads $launcher "$n" "$bin" train "$config" --out "$dir" --set train.epochs=1 \
      --set "train.batch_size=$gb" --set "data.validation=$((60000 - train))" \
      --set 'data.test_images=""' --set 'data.test_labels=""' >/dev/null
    echo "$mode ranks=$n global_batch=$gb: $(/usr/bin/python3 -c "import h5py;print('%.0f img/s' % h5py.File('$dir/run.h5')['history/images_per_second'][-1])")"
    runs+=("$mode:$n:$gb:$dir/run.h5")
  done
done

/usr/bin/python3 - "$out" "$config" "$threads" "$train" "${runs[@]}" <<'PY'
import sys, h5py, numpy as np
out, config, threads, train, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
phases = ["time_data", "time_forward", "time_backward", "time_allreduce", "time_optimizer"]
with h5py.File(out, "w") as f:
    f.attrs.update(config=config, threads_per_rank=threads, train_samples=train)
    for mode in ("strong", "weak"):
        rows = [r.split(":") for r in runs if r.startswith(mode + ":")]
        g = f.create_group(mode)
        ranks = np.array([int(r[1]) for r in rows])
        ips = []
        times = {p: [] for p in phases}
        for r in rows:
            h = h5py.File(r[3], "r")["history"]
            ips.append(h["images_per_second"][-1])
            for p in phases:
                times[p].append(h[p][-1])
        ips = np.array(ips)
        g["ranks"] = ranks
        g["global_batch"] = np.array([int(r[2]) for r in rows])
        g["images_per_second"] = ips
        g["speedup"] = ips / ips[0]
        g["efficiency"] = ips / ips[0] / ranks
        for p in phases:
            g[p] = np.array(times[p])
        for n, s, e in zip(ranks, g["speedup"][()], g["efficiency"][()]):
            print(f"{mode:6s} {n} ranks: speedup {s:.2f}x, efficiency {100 * e:.0f}%")
print("wrote", out)
PY
/usr/bin/python3 jobs/plot_scaling.py "$out" -o "${out%.h5}.png"
