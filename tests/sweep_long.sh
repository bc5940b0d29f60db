#!/usr/bin/env bash
# Sweeps of many short trials on a small generated dataset:
# 1. memory: the peak RSS of a 400-trial sweep stays within a bound of a
#    40-trial sweep's (a leak of one study image per trial grew it by
#    hundreds of MB);
# 2. a stop (USR1) and a resume record exactly what an uninterrupted sweep
#    records, also for a searched key the config does not set (its default
#    trial holds the real default, a number).
# Usage: sweep_long.sh path/to/ranksweep
set -u
bin=$1
jobs=$(cd "$(dirname "$0")/../jobs" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/checks.sh"
/usr/bin/python3 - "$tmp" <<'PY'
import sys, struct
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(0)
def idx(name, a):
    open(f"{t}/{name}", "wb").write(b"\0\0\x08" + bytes([a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
                                    + a.astype(np.uint8).tobytes())
idx("train-images", rng.integers(0, 255, (400, 28, 28))); idx("train-labels", rng.integers(0, 10, 400))
idx("test-images", rng.integers(0, 255, (100, 28, 28))); idx("test-labels", rng.integers(0, 10, 100))
PY
cat > "$tmp/tiny.toml" <<TOML
[data]
train_images = "$tmp/train-images"
train_labels = "$tmp/train-labels"
test_images = "$tmp/test-images"
test_labels = "$tmp/test-labels"
validation = 100
[model]
hidden = [16]
[train]
epochs = 1
batch_size = 32
[sweep]
method = "random"
[sweep.space]
"train.lr" = { distribution = "log_uniform", low = 1e-3, high = 1e-1 }
"model.dropout" = { distribution = "uniform", low = 0.0, high = 0.5 }
TOML
export OMP_NUM_THREADS=1

# ---- 1. peak RSS at 40 and 400 trials
rss() {  # rss TRIALS: prints the peak RSS in KB
  /usr/bin/time -f "%M" -o "$tmp/rss" "$bin" sweep "$tmp/tiny.toml" --set sweep.trials="$1" --out "$tmp/m$1" \
    >/dev/null 2>&1 && tail -1 "$tmp/rss"
}
small=$(rss 40) large=$(rss 400)
echo "peak RSS: 40 trials ${small} KB, 400 trials ${large} KB"
check "a 400-trial sweep's peak RSS within 80 MB of a 40-trial sweep's" test $((large - small)) -lt 80000

# ---- 2. USR1 mid-sweep, resume: the study equals an uninterrupted one
args=(sweep "$tmp/tiny.toml" --set sweep.trials=30 --set train.epochs=3 --set 'model.hidden=[256]')
sweep() { "$bin" "${args[@]}" "$@"; }
t0=$(date +%s.%N)
sweep --out "$tmp/ref" >/dev/null 2>&1
check "reference sweep" test -f "$tmp/ref/study.h5"
delay=$(/usr/bin/python3 -c "print(round(0.4 * ($(date +%s.%N) - $t0), 2))")
"$bin" "${args[@]}" --out "$tmp/stop" >/dev/null 2>&1 &
p=$!
sleep "$delay"
kill -USR1 $p
wait $p
rc=$?
check "USR1 after ${delay} s: status 75 (got $rc)" test $rc -eq 75
sweep --out "$tmp/stop" >/dev/null 2>&1
check "resumed sweep: every column and curve as the uninterrupted sweep's" env JOBS="$jobs" /usr/bin/python3 - "$tmp" <<'PY'
import os, sys, h5py, numpy as np
sys.path.insert(0, os.environ["JOBS"])
import ranksweep_study
t = sys.argv[1]
a, b = h5py.File(f"{t}/ref/study.h5"), h5py.File(f"{t}/stop/study.h5")
ca, cb = ranksweep_study.load(f"{t}/ref/study.h5")["curves"], ranksweep_study.load(f"{t}/stop/study.h5")["curves"]
ia, ib = list(a["trials/id"][:]), list(b["trials/id"][:])
assert sorted(ia) == sorted(ib) == list(range(31)), (ia, ib)
for c in a["trials"]:
    if c in ("wall_seconds", "start_seconds", "end_seconds", "group", "message"):
        continue
    assert a["trials"][c].dtype == b["trials"][c].dtype, (c, a["trials"][c].dtype, b["trials"][c].dtype)
    va, vb = dict(zip(ia, a["trials"][c][:])), dict(zip(ib, b["trials"][c][:]))
    assert va == vb, (c, va, vb)
assert a["trials/model.dropout"].dtype.kind == "f" and a["trials/model.dropout"][list(ia).index(0)] == 0.0
assert ca.keys() == cb.keys() and len(ca) == 31, (sorted(ca), sorted(cb))
for i in ca:
    for m in ca[i]:
        if "second" in m or m.startswith("time_"):  # timings
            continue
        assert np.array_equal(ca[i][m], cb[i][m]), (i, m)
PY

echo "sweep_long: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
