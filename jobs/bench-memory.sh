#!/usr/bin/env bash
# Peak resident memory (issue 15), ranksweep next to PyTorch (python3-torch)
# on the same jobs, 1 thread per process: tf-mnist-cnn training (1 epoch on
# 12800 Fashion-MNIST samples, batch 64), `infer` on the 10k test set, and
# training at 2 ranks (each rank's peak; PyTorch DDP: its largest process).
# GNU time's %M, in MB. At 2 ranks the node-shared parameters and optimizer
# state count in both ranks' RSS, but the node holds them once.
#
# usage: jobs/bench-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RS_DEPS_FLAGS=--bench bash jobs/build.sh
bin=$PWD/build/ranksweep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
test_images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
train_args=(inputs/fmnist-cnn.toml --set train.epochs=1 --set data.validation=47200 --set train.eval_batch_size=256)

peak() { /usr/bin/time -f 'peak_kb %M' "$@" 2>&1 >/dev/null | sed -n 's/^peak_kb //p' | sort -n | tail -1; }
ranks_peak() {  # every rank's peak, MB, space-separated
  mpirun --oversubscribe --bind-to core -np 2 /usr/bin/time -f 'peak_kb %M' "$@" 2>&1 >/dev/null |
    sed -n 's/^peak_kb //p' | awk '{printf "%d ", $1 / 1024}'
}
mb() { echo $(($1 / 1024)); }

rs_train=$(peak "$bin" train "${train_args[@]}" --out "$tmp/cnn")
pt_train=$(peak /usr/bin/python3 jobs/bench_torch.py cnn --train 12800 --threads 1)
rs_infer=$(peak "$bin" infer --model "$tmp/cnn/run.h5" --data $test_images --out "$tmp/p.h5" --top-k 5)
pt_infer=$(peak /usr/bin/python3 jobs/bench_torch.py cnn --infer "$tmp/pt.h5" --threads 1)
rs_ranks=$(ranks_peak "$bin" train "${train_args[@]}" --out "$tmp/cnn2")
pt_ddp=$(peak /usr/bin/python3 jobs/bench_torch.py cnn --train 12800 --threads 1 --ddp 2)

echo "peak RSS, MB (tf-mnist-cnn, 1 thread per process)"
printf '%-22s %10s %10s\n' job ranksweep pytorch
printf '%-22s %10s %10s\n' "training, 1 rank" "$(mb "$rs_train")" "$(mb "$pt_train")"
printf '%-22s %10s %10s\n' "inference (infer)" "$(mb "$rs_infer")" "$(mb "$pt_infer")"
printf '%-22s %10s %10s\n' "training, 2 ranks" "${rs_ranks% }" "$(mb "$pt_ddp") (largest)"
