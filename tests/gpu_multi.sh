#!/usr/bin/env bash
# [gpu-multi], the program end to end on 2 GPUs (2 ranks): a sweep of 2
# single-rank groups on distinct GPUs gives the CPU sweep's results, and
# `infer` on CUDA gives the CPU's labels. Exit 77 (ctest: Skipped) when fewer
# than 2 GPUs are visible: it never passes without running.
# Usage: gpu_multi.sh path/to/ranksweep
set -u
bin=$1
if ! "$bin" info 2>/dev/null | grep -q '^gpu 1:'; then
  echo "SKIPPED: fewer than 2 GPUs visible; the 2-GPU sweep and infer checks did not run"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fm=/usr/share/datasets/fashion-mnist
cat > "$tmp/sweep.toml" <<'TOML'
[data]
validation = 57000
[model]
preset = "tf-mnist-cnn"
[train]
epochs = 1
deterministic = true
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.003, 0.001]
"model.dropout" = [0.0, 0.5]
TOML
mpi=(mpirun --oversubscribe -np 2)
for dev in cuda cpu; do
  OMP_NUM_THREADS=1 timeout 1800 "${mpi[@]}" "$bin" sweep "$tmp/sweep.toml" --set "train.device=\"$dev\"" \
    --out "$tmp/$dev" > "$tmp/$dev.log" 2>&1 || { echo "FAILED: the $dev sweep"; cat "$tmp/$dev.log"; exit 1; }
done
/usr/bin/python3 - "$tmp" <<'PY' || exit 1
import re, sys, glob, h5py
tmp = sys.argv[1]
def trials(d):
    t = h5py.File(f"{tmp}/{d}/study.h5", "r")["trials"]
    return {int(i): float(a) for i, a in zip(t["id"][()], t["best_val_accuracy"][()])}
gpu, cpu = trials("cuda"), trials("cpu")
assert gpu.keys() == cpu.keys(), (gpu, cpu)
for i in gpu:  # 57000 validation samples after 3000 training samples: rounding moves a few
    assert abs(gpu[i] - cpu[i]) <= 0.01, f"trial {i}: gpu {gpu[i]} cpu {cpu[i]}"
lines = set()  # each run file's binding: one line per rank, "... cuda:N (PCI id)"
for p in glob.glob(f"{tmp}/cuda/**/run.h5", recursive=True):
    b = h5py.File(p, "r").attrs["device_binding"]
    lines |= set((b.decode() if isinstance(b, bytes) else b).splitlines())
devices = {m.group(1) for m in (re.search(r"cuda:\d+ \(([^)]*)\)", l) for l in lines) if m}
assert len(devices) == 2, f"the 2 groups did not run on 2 distinct GPUs: {sorted(lines)}"
print("sweep: same trials, validation accuracy within 0.01 of the CPU's; devices", sorted(devices))
PY
for dev in cuda cpu; do
  OMP_NUM_THREADS=1 timeout 600 "${mpi[@]}" "$bin" infer --model "$tmp/cpu/study.h5" --data "$fm/t10k-images-idx3-ubyte.gz" \
    --device "$dev" --out "$tmp/pred-$dev.h5" > "$tmp/infer-$dev.log" 2>&1 ||
    { echo "FAILED: infer on $dev"; cat "$tmp/infer-$dev.log"; exit 1; }
done
/usr/bin/python3 - "$tmp" <<'PY' || exit 1
import sys, h5py, numpy as np
tmp = sys.argv[1]
g, c = (h5py.File(f"{tmp}/pred-{d}.h5", "r") for d in ("cuda", "cpu"))
top_g, top_c = g["labels"][:, 0], c["labels"][:, 0]
differ = int((top_g != top_c).sum())
assert differ <= 5, f"{differ} of {len(top_c)} top-1 labels differ between CUDA and CPU inference"
print(f"infer: {len(top_c)} samples, {differ} top-1 labels differ between CUDA and CPU")
PY
echo "gpu_multi: passed"
