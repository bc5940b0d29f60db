#!/usr/bin/env bash
# Data-parallel strong scaling against PyTorch DDP (gloo), side by side in one
# run: tf-mnist-cnn on Fashion-MNIST, global batch 64 split over the ranks,
# 1 thread per rank, SGD momentum 0.9; ranksweep with mpirun -np P (bound to
# cores), PyTorch as one process (P = 1) or P DistributedDataParallel
# processes. Each side runs REPS times per point, alternating; the best is
# kept (the machine is shared: compare within one run only). Prints training
# images/s, each side's speedup over its own 1-rank figure, and the ratio.
#
# usage: jobs/bench-scaling.sh [MAX_RANKS=2] [REPS=2] [TRAIN_SAMPLES=12800]
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-2}
reps=${2:-2}
ntrain=${3:-12800}
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=$PWD/build/ranksweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

rs_run() {  # ranks rep -> images/s
  local out=$tmp/rs-$1-$2
  mpirun --oversubscribe --bind-to core -np "$1" "$bin" train inputs/fmnist-cnn.toml --out "$out" \
    --set train.epochs=1 --set data.validation=$((60000 - ntrain)) --set train.eval_batch_size=256 >/dev/null
  /usr/bin/python3 -c "import h5py, sys; print(h5py.File(sys.argv[1], 'r')['history/images_per_second'][-1])" \
    "$out/run.h5"
}
torch_run() {  # ranks -> images/s
  if (($1 == 1)); then
    /usr/bin/python3 jobs/bench_torch.py cnn --train "$ntrain" --threads 1 | sed -E 's/.*train_ips=([0-9.]+).*/\1/'
  else
    /usr/bin/python3 jobs/bench_torch.py cnn --train "$ntrain" --threads 1 --ddp "$1" | sed -E 's/.*train_ips=([0-9.]+)/\1/'
  fi
}

echo "tf-mnist-cnn training, global batch 64, 1 thread per rank, $ntrain samples; best of $reps alternating runs"
printf '%5s %12s %12s %8s %10s %10s\n' ranks ranksweep pytorch ratio rs_speedup pt_speedup
declare -A rs pt
for ((p = 1; p <= max; p++)); do
  rs[$p]=0 pt[$p]=0
  for ((r = 0; r < reps; r++)); do
    a=$(rs_run "$p" "$r")
    b=$(torch_run "$p")
    rs[$p]=$(/usr/bin/python3 -c "print(max($a, ${rs[$p]}))")
    pt[$p]=$(/usr/bin/python3 -c "print(max($b, ${pt[$p]}))")
  done
  /usr/bin/python3 -c "r,t,r1,t1=${rs[$p]},${pt[$p]},${rs[1]},${pt[1]}; print('%5d %12.0f %12.0f %7.2fx %9.2fx %9.2fx' % ($p,r,t,r/t,r/r1,t/t1))"
done
