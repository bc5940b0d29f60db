#!/usr/bin/env bash
# Many short trials: a random sweep of TRIALS one-epoch trials of an MLP with
# 16 hidden units on the first 400 training images of Fashion-MNIST (100 held
# out, 100 test images), `mpirun -np 2 ranksweep sweep --group-size 1`. Prints
# the whole sweep's time and the time per trial (from the study's end times)
# early in the sweep and late in it: what a result costs as the study grows.
#
# usage: jobs/bench-sweep-many.sh [TRIALS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-2000}
bash jobs/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
/usr/bin/python3 - "$tmp" <<'PY'
import gzip, struct, sys
src, out = "/usr/share/datasets/fashion-mnist/", sys.argv[1]
def cut(name, n, to):  # the first n items of an IDX file
    b = gzip.open(src + name).read()
    dims = b[3]
    item = 1
    for d in struct.unpack(">" + "I" * (dims - 1), b[8:4 + 4 * dims]):
        item *= d
    with gzip.open(f"{out}/{to}", "wb") as f:
        f.write(b[:4] + struct.pack(">I", n) + b[8:4 + 4 * dims] + b[4 + 4 * dims:4 + 4 * dims + n * item])
cut("train-images-idx3-ubyte.gz", 500, "train-images.gz"); cut("train-labels-idx1-ubyte.gz", 500, "train-labels.gz")
cut("t10k-images-idx3-ubyte.gz", 100, "test-images.gz"); cut("t10k-labels-idx1-ubyte.gz", 100, "test-labels.gz")
PY
cat > "$tmp/sweep.toml" <<TOML
[data]
format = "idx"
train_images = "$tmp/train-images.gz"
train_labels = "$tmp/train-labels.gz"
test_images = "$tmp/test-images.gz"
test_labels = "$tmp/test-labels.gz"
validation = 100
[model]
hidden = [16]
[train]
epochs = 1
batch_size = 50
[sweep]
method = "random"
trials = $trials
[sweep.space]
"train.lr" = { distribution = "log_uniform", low = 1e-3, high = 1e-1 }
TOML
echo "$(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p')"
t0=$(date +%s.%N)
mpirun --oversubscribe -np 2 build/ranksweep sweep "$tmp/sweep.toml" --group-size 1 --out "$tmp/out" >/dev/null
t1=$(date +%s.%N)
/usr/bin/python3 - "$tmp/out/study.h5" "$t0" "$t1" <<'PY'
import sys
sys.path.insert(0, "jobs")
import numpy as np, ranksweep_study
e = np.sort(ranksweep_study.load(sys.argv[1])["trials"]["end_seconds"])
n = len(e)
a, b = (e[200] - e[100]) / 100, (e[int(0.75 * n)] - e[int(0.75 * n) - 100]) / 100
print(f"{n} trials in {float(sys.argv[3]) - float(sys.argv[2]):.1f} s; per trial {a * 1000:.2f} ms over trials 100-200, "
      f"{b * 1000:.2f} ms over {int(0.75 * n) - 100}-{int(0.75 * n)} ({b / a:.2f}x)")
PY
