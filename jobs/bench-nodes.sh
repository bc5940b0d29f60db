#!/usr/bin/env bash
# Training across 2 emulated nodes (tests/cluster.sh: namespaces per node, TCP
# over loopback) against 1 rank, side by side with PyTorch DDP (gloo) placed
# on the same 2 nodes. 1 thread per rank, SGD momentum 0.9, 1 epoch on
# TRAIN_SAMPLES images. Points per case: ranksweep 1 rank, 2 nodes x 1 rank,
# 1 node x 2 ranks (the one-node reference); PyTorch 1 process, DDP 2 nodes x
# 1 process. Each runs REPS times, alternating; the best is kept (the machine
# is shared: compare within one run only). Needs root (mount namespaces).
#
# usage: jobs/bench-nodes.sh [REPS=2] [TRAIN_SAMPLES=12800] [CASES="cnn:64 cnn:256 mlp:64"]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-2}
ntrain=${2:-12800}
cases=${3:-"cnn:64 cnn:256 mlp:64"}
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=$PWD/build/ranksweep
tmp=$(mktemp -d /var/tmp/bench-nodes.XXXXXX)  # not under /tmp: each emulated node has its own
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1

rs_run() {  # model batch hosts -> images/s and the exchange's share of the training time
  local out=$tmp/rs args
  rm -rf "$out"
  args=(train "inputs/fmnist-$1.toml" --out "$out" --set train.epochs=1 --set "train.batch_size=$2"
    --set "data.validation=$((60000 - ntrain))" --set train.eval_batch_size=256)
  if [[ $3 == 1 ]]; then
    "$bin" "${args[@]}" >/dev/null
  else
    tests/cluster.sh --hosts "$3" "$bin" "${args[@]}" >/dev/null
  fi
  /usr/bin/python3 -c "import h5py, sys; h = h5py.File(sys.argv[1], 'r')['history']
print(h['images_per_second'][-1], h['time_allreduce'][-1] / h['train_seconds'][-1])" "$out/run.h5"
}
torch_run() {  # model batch hosts -> images/s
  if [[ $3 == 1 ]]; then
    /usr/bin/python3 jobs/bench_torch.py "$1" --batch "$2" --train "$ntrain" --threads 1 | sed -E 's/.*train_ips=([0-9.]+).*/\1/'
  else
    tests/cluster.sh --hosts "$3" /usr/bin/python3 jobs/bench_torch.py "$1" --batch "$2" --train "$ntrain" --threads 1 \
      --ddp-mpi | sed -E 's/.*train_ips=([0-9.]+)/\1/'
  fi
}
best() { /usr/bin/python3 -c "import sys; print(max(float(x) for x in sys.argv[1:]))" "$@"; }

echo "$(date -u +%F) $(lscpu | sed -n 's/^Model name: *//p'); $ntrain samples, 1 epoch, 1 thread per rank," \
  "best of $reps alternating runs"
printf '%-9s %9s %9s %7s %6s %9s %9s %9s %7s %9s\n' case rs_1 rs_2x1 speedup exch% rs_1x2 pt_1 ddp_2x1 pt_spd rs/ddp
for c in $cases; do
  model=${c%:*} batch=${c#*:}
  a1=0 a2=0 a3=0 b1=0 b2=0 x2=0
  for ((r = 0; r < reps; r++)); do
    read -r v _ < <(rs_run "$model" "$batch" 1) && a1=$(best "$a1" "$v")
    read -r v x < <(rs_run "$model" "$batch" n1:1,n2:1)
    [[ $(best "$a2" "$v") != "$a2" ]] && x2=$x
    a2=$(best "$a2" "$v")
    read -r v _ < <(rs_run "$model" "$batch" n1:2) && a3=$(best "$a3" "$v")
    b1=$(best "$b1" "$(torch_run "$model" "$batch" 1)")
    b2=$(best "$b2" "$(torch_run "$model" "$batch" n1:1,n2:1)")
  done
  /usr/bin/python3 -c "a1,a2,a3,b1,b2,x=$a1,$a2,$a3,$b1,$b2,$x2
print('%-9s %9.0f %9.0f %6.2fx %5.1f%% %9.0f %9.0f %9.0f %6.2fx %8.2fx' % ('$c', a1, a2, a2/a1, 100*x, a3, b1, b2, b2/b1, a2/b2))"
done
echo "rs: ranksweep; 2x1: 2 emulated nodes x 1 rank; 1x2: one node, 2 ranks; exch%: time in the exchange across"
echo "nodes (time_allreduce) of 2x1's training time; pt: PyTorch 1 process; ddp_2x1: DDP, one process per node."
