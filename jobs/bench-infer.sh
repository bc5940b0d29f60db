#!/usr/bin/env bash
# Inference throughput (issue 6): `ranksweep infer` with the tf-mnist-cnn on
# Fashion-MNIST's 10k test set, 1 rank x 1 thread and 2 ranks x 1 thread,
# against PyTorch (python3-torch, 1 thread) doing the same job (read the gzip
# IDX file, normalise, forward, softmax, top-5, write HDF5) in the same run.
# Each case runs REPS times, alternating; the best of each is kept (compare
# ratios within one run only: the machine is shared and noisy).
#
# usage: jobs/bench-infer.sh [REPS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=$PWD/build/ranksweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
data=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

# A tf-mnist-cnn run file (trained briefly: the weights do not change the speed).
OMP_NUM_THREADS=2 $bin train inputs/fmnist-cnn.toml --out "$tmp/cnn" --set train.epochs=1 \
  --set data.validation=58000 >/dev/null

ips() { /usr/bin/python3 -c "import h5py,sys; print(round(h5py.File(sys.argv[1])['/'].attrs['images_per_second']))" "$1"; }
rs_run() {  # ranks rep
  local out=$tmp/p-$1-$2.h5
  OMP_NUM_THREADS=1 mpirun -np "$1" --bind-to core $bin infer --model "$tmp/cnn/run.h5" --data $data --out "$out" \
    --top-k 5 >/dev/null
  ips "$out"
}
pt_run() { OMP_NUM_THREADS=1 /usr/bin/python3 jobs/bench_torch.py cnn --infer "$tmp/pt.h5" --threads 1 | sed -E 's/.*infer_ips=//'; }

best1=0 best2=0 bestp=0
for ((r = 0; r < reps; r++)); do
  a=$(rs_run 1 "$r"); b=$(rs_run 2 "$r"); c=$(pt_run)
  echo "run $r: ranksweep 1 rank $a, 2 ranks $b, pytorch $c images/s"
  read -r best1 best2 bestp < <(/usr/bin/python3 -c "print(max($a,$best1), max($b,$best2), max($c,$bestp))")
done
/usr/bin/python3 - "$best1" "$best2" "$bestp" <<'PY'
import sys
one, two, pt = map(float, sys.argv[1:])
print("tf-mnist-cnn inference, Fashion-MNIST 10k test set, top-5 to HDF5, 1 thread per process (best of runs)")
print(f"  ranksweep 1 rank : {one:8.0f} images/s   vs PyTorch {pt:8.0f}: {one / pt:.2f}x  (target >= 1.0x)")
print(f"  ranksweep 2 ranks: {two:8.0f} images/s   vs 1 rank        : {two / one:.2f}x  (target >= 1.8x)")
PY
