#!/usr/bin/env bash
# ranksweep vs PyTorch (Debian's python3-torch, CPU) on this machine, in one
# run: the same models (MLP 784-512-512-10, tf-mnist-cnn), data
# (Fashion-MNIST), batch size (64), optimizer (SGD momentum 0.9, lr 0.01) and
# thread count. Prints training and inference images/s and the ratios.
# Each side runs REPS times, alternating, and the best of each is kept (the
# machine is shared and noisy: compare ratios within one run only).
#
# usage: [MODELS="mlp cnn"] jobs/bench-vs-pytorch.sh [THREADS=2] [REPS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
reps=${2:-2}
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=build/ranksweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# training samples per model (the rest of the 60k, plus the 10k test set, is the inference set)
declare -A ntrain=([mlp]=55000 [cnn]=12800)
declare -A config=([mlp]=inputs/fmnist-mlp.toml [cnn]=inputs/fmnist-cnn.toml)

rs_run() {  # kind rep -> "train_ips eval_ips"
  local kind=$1 out=$tmp/$1-$2
  OMP_NUM_THREADS=$threads $bin train "${config[$kind]}" --out "$out" \
    --set train.epochs=1 --set data.validation=$((60000 - ntrain[$kind])) --set train.eval_batch_size=256 >/dev/null
  /usr/bin/python3 - "$out/run.h5" <<'PY'
import sys, h5py
h = h5py.File(sys.argv[1], "r")["history"]
print(h["images_per_second"][-1], h["eval_images_per_second"][-1])
PY
}

torch_run() {  # kind -> "train_ips eval_ips"
  OMP_NUM_THREADS=$threads /usr/bin/python3 jobs/bench_torch.py "$1" --train "${ntrain[$1]}" --threads "$threads" |
    sed -E 's/.*train_ips=([0-9.]+) eval_ips=([0-9.]+)/\1 \2/'
}

echo "threads per process: $threads; best of $reps alternating runs; batch 64 (train), 256 (inference)"
printf '%-5s %-9s %12s %12s %8s\n' model phase ranksweep pytorch ratio
for kind in ${MODELS:-mlp cnn}; do
  best_rs=(0 0) best_pt=(0 0)
  for ((r = 0; r < reps; r++)); do
    read -r a b < <(rs_run "$kind" "$r")
    read -r c d < <(torch_run "$kind")
    best_rs=($(/usr/bin/python3 -c "print(max($a,${best_rs[0]}), max($b,${best_rs[1]}))"))
    best_pt=($(/usr/bin/python3 -c "print(max($c,${best_pt[0]}), max($d,${best_pt[1]}))"))
  done
  for i in 0 1; do
    phase=$([[ $i == 0 ]] && echo train || echo inference)
    /usr/bin/python3 -c "r,p=${best_rs[$i]},${best_pt[$i]}; print(f'%-5s %-9s %12.0f %12.0f %7.2fx' % ('$kind','$phase',r,p,r/p))"
  done
done
