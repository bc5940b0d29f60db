#!/usr/bin/env bash
# ranksweep vs PyTorch (Debian's python3-torch, CPU) on this machine, in one
# run: the same models (MLP 784-512-512-10, tf-mnist-cnn), data
# (Fashion-MNIST), batch size (64), optimizer (SGD momentum 0.9, lr 0.01) and
# thread count. Prints training and inference images/s and the ratios.
# "seed" is the CNN sweep's default trial (inputs/fmnist-cnn-sweep.toml: the
# TensorFlow tutorial's Adam at 1e-4, batch 50, dropout 0.5) trained for 3
# epochs on 55k images: each epoch's images/s and ratio, and the seconds each
# side spent in the optimizer step that epoch (a slowdown that appears only
# after the first epoch, e.g. from denormal optimizer state, shows here).
# Each side runs REPS times, alternating, and the best of each is kept (the
# machine is shared and noisy: compare ratios within one run only).
#
# usage: [MODELS="mlp cnn seed"] jobs/bench-vs-pytorch.sh [THREADS=2] [REPS=2]
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

seed_run() {  # rep: the seed configuration, 3 epochs, both sides, one line per epoch
  local out=$tmp/seed-$1
  OMP_NUM_THREADS=$threads $bin train inputs/fmnist-cnn-sweep.toml --out "$out" --set train.epochs=3 >/dev/null
  OMP_NUM_THREADS=$threads /usr/bin/python3 jobs/bench_torch.py cnn --train 55000 --batch 50 --optimizer adam \
    --lr 1e-4 --epochs 3 --threads "$threads" >"$out/torch.txt"
  /usr/bin/python3 - "$out/run.h5" "$out/torch.txt" <<'PY'
import re, sys, h5py
h = h5py.File(sys.argv[1], "r")["history"]
pt = [dict(re.findall(r"(\w+)=([0-9.]+)", l)) for l in open(sys.argv[2]) if l.startswith("torch epoch=")]
for e, (ips, opt) in enumerate(zip(h["images_per_second"][:], h["time_optimizer"][:])):
    p = pt[e]
    print(f"seed  epoch {e + 1} {ips:12.0f} {float(p['train_ips']):12.0f} {ips / float(p['train_ips']):7.2f}x"
          f" {opt:13.1f} {float(p['optimizer_s']):13.1f}")
PY
}

echo "threads per process: $threads; best of $reps alternating runs; batch 64 (train), 256 (inference)"
printf '%-5s %-9s %12s %12s %8s\n' model phase ranksweep pytorch ratio
for kind in ${MODELS:-mlp cnn seed}; do
  if [[ $kind == seed ]]; then
    echo "seed: Adam 1e-4, batch 50, dropout 0.5, 55k images, 3 epochs (each run shown; optimizer s per epoch)"
    printf '%-5s %-7s %12s %12s %8s %13s %13s\n' model epoch ranksweep pytorch ratio rs-optim-s torch-optim-s
    for ((r = 0; r < reps; r++)); do seed_run "$r"; done
    continue
  fi
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
