#!/usr/bin/env bash
# Sweep throughput against Optuna + PyTorch, side by side in one run: the same
# 12-trial grid (train.lr x train.batch_size) of tf-mnist-cnn trials, 1 epoch
# each on the first TRAIN + 1000 samples of Fashion-MNIST (1000 held out for
# the validation accuracy each side reports), or with MODEL=mlp the grid of
# inputs/fmnist-mlp-sweep.toml (train.lr x the hidden width) at 1 epoch on all
# 60000 training images (5000 held out), one thread per process:
#   ranksweep: mpirun -np 2, two single-rank groups (--group-size 1);
#   Optuna:    2 worker processes sharing a journal-file study (GridSampler).
# Both figures are whole-command wall times (start-up, data, every trial),
# as grid points done per hour: Optuna's two workers sometimes both run the
# last free point (GridSampler's race), a trial that finishes no new point.
# Each side runs REPS times, alternating; the best is kept.
#
# usage: [MODEL=cnn|mlp] jobs/bench-sweep-vs-optuna.sh [REPS=2] [TRAIN=3000]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-2}
ntrain=${2:-3000}
model=${MODEL:-cnn}
nval=1000
[[ $model == mlp ]] && ntrain=55000 nval=5000
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=$PWD/build/ranksweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
lrs="0.005,0.01,0.02,0.05" batches="32,64,128"
[[ $model == mlp ]] && lrs="0.003,0.01,0.03,0.1" widths="128,256,512"

/usr/bin/python3 - "$tmp/data.h5" $((ntrain + nval)) <<'PY'
import gzip, sys, h5py, numpy as np
d = "/usr/share/datasets/fashion-mnist/"
def idx(p):
    b = gzip.open(d + p).read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
n = int(sys.argv[2])
with h5py.File(sys.argv[1], "w") as f:
    f["images"] = idx("train-images-idx3-ubyte.gz")[:n]
    f["labels"] = idx("train-labels-idx1-ubyte.gz")[:n].astype(np.int32)
PY
if [[ $model == mlp ]]; then
  model_keys=$'preset = "mlp"\nhidden = [256]' train_keys=$'batch_size = 64\nlr = 0.01'
  second="\"model.hidden\" = [[${widths//,/], [}]]" peer_grid="--hidden $widths"
else
  model_keys='preset = "tf-mnist-cnn"' train_keys=""
  second="\"train.batch_size\" = [${batches//,/, }]" peer_grid="--batch $batches"
fi
cat > "$tmp/sweep.toml" <<TOML
[data]
format = "hdf5"
path = "$tmp/data.h5"
validation = $nval
[model]
$model_keys
[train]
epochs = 1
$train_keys
optimizer = "sgd"
momentum = 0.9
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [${lrs//,/, }]
$second
TOML

rs_run() {  # rep -> "trials seconds best"
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe --bind-to core -np 2 "$bin" sweep "$tmp/sweep.toml" --group-size 1 --out "$tmp/rs$1" >/dev/null
  t1=$(date +%s.%N)
  /usr/bin/python3 -c "
import h5py, sys; t = h5py.File(sys.argv[1], 'r')['trials']
st = [s.decode() if isinstance(s, bytes) else s for s in t['status'][()]]
print(sum(s == 'completed' for s in st), $t1 - $t0, max(t['best_val_accuracy'][()]))" "$tmp/rs$1/study.h5"
}
pt_run() {  # rep -> "points seconds best trials"
  /usr/bin/python3 jobs/bench_optuna.py "$tmp/data.h5" --validation $nval --lr "$lrs" $peer_grid --workers 2 \
    --journal "$tmp/journal$1.log" |
    sed -E 's/.*trials=([0-9]+) points=([0-9]+) seconds=([0-9.]+) best=([0-9.]+)/\2 \3 \4 \1/'
}

echo "12-trial $model grid, 1 epoch on $ntrain samples (+$nval validation), 2 single-thread workers; best of $reps"
best_rs=0 best_pt=0
for ((r = 0; r < reps; r++)); do
  read -r n1 s1 a1 < <(rs_run "$r")
  read -r n2 s2 a2 t2 < <(pt_run "$r")
  echo "  run $r: ranksweep $n1 trials in ${s1}s (best val $a1); optuna+pytorch $n2 grid points ($t2 trials run) in ${s2}s (best val $a2)"
  best_rs=$(/usr/bin/python3 -c "print(max($best_rs, $n1 / $s1 * 3600))")
  best_pt=$(/usr/bin/python3 -c "print(max($best_pt, $n2 / $s2 * 3600))")
done
/usr/bin/python3 -c "r,p=$best_rs,$best_pt; print(f'grid points/hour: ranksweep {r:.0f}, optuna+pytorch {p:.0f}, ratio {r/p:.2f}x')"
