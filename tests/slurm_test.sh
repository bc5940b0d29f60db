#!/usr/bin/env bash
# The job scripts against a real Slurm: starts a private single-node Slurm
# (tests/slurm/cluster.sh), submits each shipped sbatch script with small
# settings, signals a sweep mid-trial and lets a short time limit stop another,
# and checks that both come back by themselves (requeue) to the results of an
# uninterrupted sweep. Stops exactly the daemons it started.
# Usage: slurm_test.sh path/to/ranksweep
set -u
bin=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/rs-slurm.XXXXXX)
source "$src/tests/slurm/cluster.sh"
trap 'slurm_stop; if ((fail)); then echo "kept $tmp"; else rm -rf "$tmp"; fi' EXIT
export RANKSWEEP=$bin OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
source "$src/tests/checks.sh"
py() { /usr/bin/python3 -c "$@"; }

slurm_start "$tmp/cluster" || { echo "FAILED: private Slurm did not start"; echo "0 passed, 1 failed"; exit 1; }
# No GPUs here: every submission says so on the command line (the scripts' header asks for one per task).
sb=(sbatch --parsable --gpus-per-task=0 --ntasks-per-node=2 --nodes=1)

# Data: Fashion-MNIST, an MLP sweep of 9 trials x 2 epochs (about 15 s on 2 ranks here).
cat > "$tmp/sweep.toml" <<'TOML'
[data]
validation = 5000
[model]
hidden = [32]
[train]
epochs = 2
lr = 0.02
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.2, 0.05, 0.01, 0.003]
"model.hidden" = [[16], [96]]
TOML
compare() {  # compare REF.h5 STUDY.h5: same trials once each, same results, same curves
  py "
import h5py, numpy as np, sys
sys.path.insert(0, '$src/jobs')
import ranksweep_study
a, b = h5py.File('$1'), h5py.File('$2')
ca, cb = ranksweep_study.load('$1')['curves'], ranksweep_study.load('$2')['curves']
ia, ib = list(a['trials/id'][:]), list(b['trials/id'][:])
assert sorted(ia) == sorted(ib) and len(set(ib)) == len(ib), (ia, ib)
for c in ('status', 'epochs', 'best_val_accuracy', 'test_accuracy'):
    va, vb = dict(zip(ia, a['trials/' + c][:])), dict(zip(ib, b['trials/' + c][:]))
    assert all(va[i] == vb[i] for i in ia), (c, va, vb)
assert ca.keys() == cb.keys(), (sorted(ca), sorted(cb))
for t in ca:
    for m in ('train_loss', 'val_accuracy', 'test_loss'):
        assert np.array_equal(ca[t][m], cb[t][m]), (t, m)
"
}

# ---- 0. a job script run outside Slurm says it needs sbatch (status 2), before doing anything
out=$(env -u SLURM_JOB_ID bash "$src/jobs/slurm/train.sbatch" "$tmp/none.toml" "$tmp/none" 2>&1)
rc=$?
check "train.sbatch outside Slurm: status 2 (got $rc), one line naming sbatch, nothing created" \
  test "$rc" -eq 2 -a "$(echo "$out" | grep -c 'submit it with sbatch')" -eq 1 -a ! -e "$tmp/none"

# ---- 1. srun without --mpi=pmix: one clear line, status 2 (not N copies, not a page of PMI errors)
out=$(srun -N 1 -n 2 "$bin" info 2>&1)
rc=$?
check "srun -n 2 without --mpi=pmix: status 2 (got $rc)" test "$rc" -eq 2
check "srun -n 2 without --mpi=pmix: one line naming --mpi=pmix" \
  test "$(echo "$out" | grep -c 'srun started 2 tasks without an MPI plugin.*--mpi=pmix')" -eq 1

# A slower sweep (4 trials of a wide MLP, about 12 s on 2 ranks here) for the time-limit cases.
cat > "$tmp/slow.toml" <<'TOML'
[data]
validation = 45000
[model]
hidden = [1024, 1024]
[train]
epochs = 2
lr = 0.02
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.05, 0.01, 0.003]
TOML

# ---- 2. the references: the same sweeps under mpirun, uninterrupted
mpirun --oversubscribe -np 2 "$bin" sweep "$tmp/sweep.toml" --out "$tmp/ref" >"$tmp/ref.log" 2>&1
check "reference sweep under mpirun" test -f "$tmp/ref/study.h5"
mpirun --oversubscribe -np 2 "$bin" sweep "$tmp/slow.toml" --out "$tmp/slowref" >"$tmp/slowref.log" 2>&1
check "reference slow sweep under mpirun" test -f "$tmp/slowref/study.h5"

# ---- 2b. an injected deadline (mpirun, --deadline +SECONDS) halfway into the second wave of trials: the running
# ones stop at a step, none starts that cannot reach its first checkpoint (the policy's unit tests check that
# decision), the sweep exits 75 with every recorded job ended in time, and a rerun completes it.
dl=$(py "import h5py; e = sorted(h5py.File('$tmp/slowref/study.h5')['trials/end_seconds'][:]); print(round(e[1] * 1.5 + 2))")
mpirun --oversubscribe -np 2 "$bin" sweep "$tmp/slow.toml" --out "$tmp/dl" --deadline "+$dl" --deadline-margin 0 \
  >"$tmp/dl.out" 2>&1
rc=$?
check "injected deadline +$dl s: status 75 (got $rc)" test "$rc" -eq 75
check "injected deadline: every recorded job ended before the deadline" py "
import h5py; t = h5py.File('$tmp/dl/study.h5')['trials']; assert (t['end_seconds'][:] <= $dl).all(), t['end_seconds'][:]"
mpirun --oversubscribe -np 2 "$bin" sweep "$tmp/slow.toml" --out "$tmp/dl" >>"$tmp/dl.out" 2>&1
check "injected deadline: the rerun completes the sweep as the uninterrupted one" \
  compare "$tmp/slowref/study.h5" "$tmp/dl/study.h5"

# ---- 2c. two signals in quick succession (the second while the first checkpoint is being written) under
# mpirun: status 75, and the resumed run equals an uninterrupted one bit for bit.
cfg2=(--set "model.hidden=[1024, 1024]" --set data.validation=45000 --set train.epochs=2)
mpirun --oversubscribe -np 2 "$bin" train "$tmp/sweep.toml" --out "$tmp/whole" "${cfg2[@]}" >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$bin" train "$tmp/sweep.toml" --out "$tmp/twice" "${cfg2[@]}" >"$tmp/twice.out" 2>&1 &
launcher=$!
for i in $(seq 1 400); do [[ -f "$tmp/twice/run.h5" ]] && break; sleep 0.05; done  # after the first epoch
sleep 0.3
ranks=$(pgrep -P "$launcher" -d ' ')  # mpirun's children: the ranks
kill -USR1 $ranks 2>/dev/null
sleep 0.05
kill -USR1 $ranks 2>/dev/null
wait $launcher
rc=$?
check "two signals: status 75 (got $rc)" test "$rc" -eq 75
mpirun --oversubscribe -np 2 "$bin" train --resume "$tmp/twice" >>"$tmp/twice.out" 2>&1
check "two signals: the resumed run equals the uninterrupted one" py "
import h5py, numpy as np
a, b = h5py.File('$tmp/whole/run.h5'), h5py.File('$tmp/twice/run.h5')
for m in ('train_loss', 'val_accuracy', 'test_loss'): assert np.array_equal(a['history'][m][:], b['history'][m][:]), m
assert all(np.array_equal(a['model'][l][t][:], b['model'][l][t][:]) for l in a['model'] for t in a['model'][l])"

# ---- 3. train.sbatch, then infer.sbatch on its run
id=$("${sb[@]}" --time=5 -o "$tmp/train.out" "$src/jobs/slurm/train.sbatch" "$tmp/sweep.toml" "$tmp/train" \
  --set train.epochs=2)
r=$(slurm_wait_job "$id")
check "train.sbatch: COMPLETED 0:0 ($r)" test "${r% *}" == "COMPLETED 0:0"
check "train.sbatch: run.h5 with 2 epochs" py "import h5py; assert h5py.File('$tmp/train/run.h5').attrs['epochs_done'] == 2"
check "train.sbatch: the log's first program line names the Slurm job" \
  grep -q "ranksweep train: Slurm job $id, 1 node(s), 2 rank(s)" "$tmp/train.out"
check "train.sbatch: provenance has the job id and every rank's binding" py "
import h5py; f = h5py.File('$tmp/train/run.h5')
assert f.attrs['slurm_job_id'] in ('$id', b'$id'), f.attrs['slurm_job_id']
assert len(f.attrs['device_binding'].splitlines()) == 2, f.attrs['device_binding']"
# the same OUT with an edited CONFIG: refused (exit 2 naming the first difference), the run left as it was
sed 's/lr = 0.02/lr = 0.03/' "$tmp/sweep.toml" > "$tmp/edited.toml"
sum=$(md5sum < "$tmp/train/run.h5")
id=$("${sb[@]}" --time=5 -o "$tmp/edited.out" "$src/jobs/slurm/train.sbatch" "$tmp/edited.toml" "$tmp/train" \
  --set train.epochs=2)
r=$(slurm_wait_job "$id")
check "train.sbatch with a changed CONFIG on an existing OUT: FAILED 2:0 ($r)" test "${r% *}" == "FAILED 2:0"
check "train.sbatch with a changed CONFIG: one line naming the difference, run.h5 unchanged" \
  test "$(grep -c 'not the config of the run.*train.lr is 0.03 in' "$tmp/edited.out")" -eq 1 -a \
  "$(md5sum < "$tmp/train/run.h5")" == "$sum"
# a checkout whose path holds a space (the script finds its common.sh from scontrol's Command=)
mkdir -p "$tmp/a checkout/jobs" && cp -r "$src/jobs/slurm" "$tmp/a checkout/jobs/"
id=$("${sb[@]}" --time=5 -o "$tmp/space.out" "$tmp/a checkout/jobs/slurm/train.sbatch" "$tmp/sweep.toml" \
  "$tmp/space run" --set train.epochs=1)
r=$(slurm_wait_job "$id")
check "train.sbatch from a path with a space: COMPLETED 0:0 ($r)" test "${r% *}" == "COMPLETED 0:0"
check "train.sbatch from a path with a space: run.h5 written" test -f "$tmp/space run/run.h5"
id=$("${sb[@]}" --time=5 -o "$tmp/infer.out" "$src/jobs/slurm/infer.sbatch" "$tmp/train/run.h5" \
  /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "$tmp/preds.h5" --top-k 3)
r=$(slurm_wait_job "$id")
check "infer.sbatch: COMPLETED 0:0 ($r)" test "${r% *}" == "COMPLETED 0:0"
check "infer.sbatch: 10000 predictions, top-1 accuracy = the run's test accuracy" py "
import h5py; p = h5py.File('$tmp/preds.h5'); h = h5py.File('$tmp/train/run.h5')['history/test_accuracy'][-1]
assert p['labels'].shape == (10000, 3) and abs(p.attrs['top1_accuracy'] - h) < 1e-9, (p['labels'].shape, p.attrs['top1_accuracy'], h)"

# ---- 4. sweep.sbatch, USR1 mid-trial (scancel --signal): checkpoint, status 75, requeue, finish
id=$("${sb[@]}" --time=10 -o "$tmp/sweep.out" "$src/jobs/slurm/sweep.sbatch" "$tmp/sweep.toml" "$tmp/sweep")
slurm_signal_mid_sweep "$id" "$tmp/sweep/study.h5"
r=$(slurm_wait_job "$id")
check "sweep.sbatch after USR1: COMPLETED 0:0 after 1 restart ($r)" test "$r" == "COMPLETED 0:0 1"
check "sweep.sbatch: the program checkpointed and asked to be requeued" \
  grep -q "stopped early with a checkpoint: requeueing $id" "$tmp/sweep.out"
check "sweep.sbatch: trials were interrupted at a step and went on after the restart" grep -q "interrupted" "$tmp/sweep.out"
check "sweep.sbatch: every trial once, results and curves equal to the uninterrupted sweep" \
  compare "$tmp/ref/study.h5" "$tmp/sweep/study.h5"

# ---- 4b. sweep-array.sbatch: three array tasks of one rank each drive one study (--shared); on this 2-CPU
# node the third starts when one of the first two ends, and joins or finds the sweep done
id=$("${sb[@]}" --ntasks-per-node=1 --array=0-2 --time=10 -o "$tmp/array-%a.out" "$src/jobs/slurm/sweep-array.sbatch" \
  "$tmp/sweep.toml" "$tmp/array")
r=$(slurm_wait_job "$id")
check "sweep-array.sbatch: 3 tasks COMPLETED 0:0 ($(echo $r))" test "$(echo "$r" | grep -c '^COMPLETED 0:0')" -eq 3
check "sweep-array.sbatch: every trial once, results and curves equal to one job's" \
  compare "$tmp/ref/study.h5" "$tmp/array/study.h5"

# ---- 5. a time limit mid-sweep: --time=1 with USR1 50 s before it, and the program's own deadline
# (Slurm's end time, from squeue) with a 50 s margin: each run stops after ~10 s, by the signal or by the
# deadline, starts no trial that cannot reach a checkpoint in time, and the restarts finish the sweep.
id=$("${sb[@]}" --time=1 --signal=B:USR1@50 -o "$tmp/limit.out" "$src/jobs/slurm/sweep.sbatch" "$tmp/slow.toml" \
  "$tmp/limit" --deadline-margin 50)
r=$(slurm_wait_job "$id" 600)
check "sweep.sbatch under a 1-minute limit: COMPLETED 0:0 after restarts ($r)" \
  test "${r% *}" == "COMPLETED 0:0" -a "${r##* }" -ge 1
check "sweep.sbatch under a 1-minute limit: it knew the deadline from Slurm" grep -q "(squeue), work stops 50 s before it" "$tmp/limit.out"
check "sweep.sbatch under a 1-minute limit: every trial once, results equal to the uninterrupted sweep" \
  compare "$tmp/slowref/study.h5" "$tmp/limit/study.h5"

# ---- 5a. USR1 to the batch script as soon as it runs (as Slurm's warning may come in a short job): the
# script holds it until the step has run 5 s, then forwards it; checkpoint, requeue, same results. "As soon
# as it runs" is its first log line (its traps come before it): a job Slurm reports RUNNING may not have
# started bash yet, and a USR1 then kills it before any trap exists (seen once on a loaded machine).
id=$("${sb[@]}" --time=5 -o "$tmp/early.out" "$src/jobs/slurm/sweep.sbatch" "$tmp/slow.toml" "$tmp/early")
for i in $(seq 1 300); do grep -q ": restart 0," "$tmp/early.out" 2>/dev/null && break; sleep 0.1; done
scancel --batch --signal=USR1 "$id"
r=$(slurm_wait_job "$id")
check "early USR1 to the batch script: COMPLETED 0:0 after 1 restart ($r)" test "$r" == "COMPLETED 0:0 1"
check "early USR1 to the batch script: held, then forwarded to the step" grep -q "USR1: forwarding to the job step" \
  "$tmp/early.out"
check "early USR1 to the batch script: results equal to the uninterrupted sweep" \
  compare "$tmp/slowref/study.h5" "$tmp/early/study.h5"

# ---- 5b. a program that keeps stopping early without writing anything: requeued at most
# RANKSWEEP_MAX_IDLE_RESTARTS times, then the job ends with status 75 instead of looping forever.
printf '#!/bin/sh\necho "fake ranksweep: stopping early"\nexit 75\n' >"$tmp/fake"
chmod +x "$tmp/fake"
id=$(RANKSWEEP=$tmp/fake RANKSWEEP_MAX_IDLE_RESTARTS=1 "${sb[@]}" --time=5 -o "$tmp/idle.out" \
  "$src/jobs/slurm/train.sbatch" "$tmp/sweep.toml" "$tmp/idle")
r=$(slurm_wait_job "$id")
check "idle restarts: the job gives up after 1 requeue, status 75 ($r)" test "$r" == "FAILED 75:0 1"
check "idle restarts: it says why" grep -q "stopped early 2 times in a row without writing anything under $tmp/idle" \
  "$tmp/idle.out"

# ---- 6. pipeline.sbatch: sweep then infer with the best trial, one allocation
cat > "$tmp/small.toml" <<'TOML'
[data]
validation = 55000
[model]
hidden = [16]
[train]
epochs = 1
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.05, 0.2]
TOML
id=$(RANKSWEEP_INFER_ARGS="--top-k 2" "${sb[@]}" --time=5 -o "$tmp/pipe.out" "$src/jobs/slurm/pipeline.sbatch" \
  "$tmp/small.toml" "$tmp/pipe" /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz)
r=$(slurm_wait_job "$id")
check "pipeline.sbatch: COMPLETED 0:0 ($r)" test "${r% *}" == "COMPLETED 0:0"
check "pipeline.sbatch: predictions of the study's best trial" py "
import h5py; s = h5py.File('$tmp/pipe/study.h5'); p = h5py.File('$tmp/pipe/predictions.h5')
best = s['best'].attrs['trial']; i = list(s['trials/id'][:]).index(best)
assert p['labels'].shape == (10000, 2) and abs(p.attrs['top1_accuracy'] - s['trials/test_accuracy'][i]) < 1e-9"

echo "$pass passed, $fail failed"
if ((fail)); then
  for f in "$tmp"/*.out; do echo "== $f"; tail -30 "$f"; done
  exit 1
fi
