#!/usr/bin/env bash
# Several jobs, one study (`ranksweep sweep --shared`): three independent
# mpirun jobs on one --out, one of them SIGKILLed while it trains a trial it
# claimed; the other two take that trial over after the heartbeat timeout and
# finish. The merged DIR/study.h5 must hold every trial exactly once with the
# results a single job gets (tests/compare_studies.py), for a grid and a random
# sweep; for TPE (whose proposals depend on which results each job has read)
# every trial once, each with the values its checkpoint was trained with; for
# ASHA (whose promotions depend on the order results arrive in) every stage of
# a trial run by one job only, every trial in the merged study at a rung or
# its full budget. Then bad input: a job with another config, a job without
# --shared on the shared directory: each exit 2 with one line.
# Usage: sweep_shared.sh path/to/ranksweep
set -u
bin=$1
here=$(dirname "$0")
export HERE=$here
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
cp "$here/fixtures/grid-sweep.toml" "$tmp/grid.toml"
sed -e 's/method = "grid"/method = "random"\ntrials = 8\nseed = 3/' \
    -e 's/"train.lr" = .*/"train.lr" = { distribution = "log_uniform", low = 0.003, high = 0.3 }/' \
    "$tmp/grid.toml" > "$tmp/random.toml"
sed -e 's/method = "grid"/method = "tpe"\ntrials = 10\nseed = 5/' \
    -e 's/"train.lr" = .*/"train.lr" = { distribution = "log_uniform", low = 0.003, high = 0.3 }/' \
    "$tmp/grid.toml" > "$tmp/tpe.toml"
printf '[sweep.tpe]\nstartup_trials = 2\n' >> "$tmp/tpe.toml"
# ASHA: first rung at 2 epochs (a checkpoint mid-job, so the kill lands inside a trial), then the full 4
sed -e 's/^epochs = 3/epochs = 4/' "$tmp/grid.toml" > "$tmp/asha.toml"
printf '[sweep.asha]\nmin_epochs = 2\nreduction = 2\n' >> "$tmp/asha.toml"
source "$here/checks.sh"
values() {  # values OUT: "trial lr" for every checkpoint under OUT/trials
  /usr/bin/python3 - "$1" <<'PY'
import glob, os, sys, tomllib, h5py
for p in glob.glob(sys.argv[1] + "/trials/*/run.h5"):
    text = h5py.File(p, "r").attrs["config"]
    cfg = tomllib.loads(text.decode() if isinstance(text, bytes) else text)
    print(os.path.basename(os.path.dirname(p)), repr(cfg["train"]["lr"]))
PY
}
job() {  # job CONFIG OUT LOG [ARGS...]: one shared job in the background, in its own process group
  setsid bash -c "exec timeout 300 mpirun --oversubscribe -np 1 '$bin' sweep '$1' --out '$2' --shared \
    --shared-timeout 3 ${*:4}" > "$3" 2>&1 &
}

for kind in grid random tpe asha; do
  cfg=$tmp/$kind.toml out=$tmp/$kind-shared
  [[ $kind == tpe || $kind == asha ]] ||
    timeout 300 mpirun --oversubscribe -np 1 "$bin" sweep "$cfg" --out "$tmp/$kind-single" > /dev/null 2>&1 ||
    { fail=$((fail + 1)); echo "FAILED: $kind single-job reference"; continue; }
  mkdir -p "$out" && ln -s "$out" "$tmp/$kind-victim"  # the same directory, a command line of its own
  job "$cfg" "$out" "$tmp/$kind-2.log"
  p2=$!
  job "$cfg" "$out" "$tmp/$kind-3.log"
  p3=$!
  # the third job joins late, so that it claims a later trial (for TPE: one proposed from results)
  for ((i = 0; i < 600; i++)); do
    (($(ls "$out/shared/claims" 2>/dev/null | wc -l) >= 4)) && break
    sleep 0.05
  done
  job "$cfg" "$tmp/$kind-victim" "$tmp/$kind-1.log"
  victim=$!
  # the victim's name, then the moment it holds a claim (it is training that trial)
  name="" claimed=""
  for ((i = 0; i < 600; i++)); do
    sleep 0.05
    [[ -z $name ]] && name=$(sed -n 's/^sweep: job \([^ ]*\) joins.*/\1/p' "$tmp/$kind-1.log")
    [[ -n $name ]] && claimed=$(grep -lx "$name" "$out"/shared/claims/* 2>/dev/null | head -1)
    [[ -n $claimed ]] && break
  done
  # after that trial's first checkpoint, so the take-over resumes it from there
  trial=${claimed##*/} trial=${trial%%@*}
  for ((i = 0; i < 100; i++)); do
    [[ -z $claimed || -f $out/trials/$trial/run.h5 ]] && break
    sleep 0.05
  done
  kill -9 -- -"$victim" 2>/dev/null
  pkill -9 -f "$tmp/$kind-victim" 2>/dev/null
  values "$out" > "$tmp/$kind-values.txt"  # every checkpoint's train.lr at the kill
  wait "$p2"; s2=$?
  wait "$p3"; s3=$?
  check "$kind: the two surviving jobs end with status 0 ($s2, $s3)" test "$s2$s3" = 00
  check "$kind: the killed job held a claim (${claimed##*/})" test -n "$claimed"
  check "$kind: a surviving job took the killed job's trial over" grep -q "taken over" "$tmp/$kind-2.log" "$tmp/$kind-3.log"
  # (with ASHA a trial has a row in each job that ran one of its stages: no stage may have two)
  check "$kind: no trial (ASHA: no stage of a trial) has a result in two jobs' studies" \
    /usr/bin/python3 - "$kind" "$out"/shared/jobs/* <<'PY'
import collections, os, sys
sys.path.insert(0, os.path.join(os.environ["HERE"], "..", "jobs"))
import ranksweep_study
runs = collections.Counter()
for d in sys.argv[2:]:
    p = os.path.join(d, "study.h5")
    if os.path.exists(p) or os.path.exists(os.path.join(d, "study.journal")):
        t = ranksweep_study.load(p)["trials"]
        stages = zip(t.get("id", []), t.get("epochs", [])) if sys.argv[1] == "asha" else t.get("id", [])
        runs.update(stages)
twice = [i for i, n in runs.items() if n > 1]
assert not twice, f"run twice: {twice}"
PY
  if [[ $kind == asha ]]; then
    check "asha: every trial once in the merged study, trial 0 and the promoted ones at 4 epochs, the rest at 2" \
      /usr/bin/python3 - "$out/study.h5" <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
rows = sorted(zip(t["id"][()], t["epochs"][()], t["status"].asstr()[()]))
assert [r[0] for r in rows] == list(range(13)), rows
assert rows[0][1:] == (4, "completed"), rows
assert all((e, s) in ((2, "pruned"), (4, "completed")) for _, e, s in rows), rows
done = sum(s == "completed" for _, _, s in rows)
assert 2 <= done <= 7, f"{done} trials completed of 13 (ASHA with reduction 2 promotes about half)"
PY
    check "asha: promotions claimed as stages of their own" bash -c "compgen -G '$out/shared/claims/*@4*' > /dev/null"
  elif [[ $kind == tpe ]]; then
    check "tpe: every trial once, each with the values it had at the kill ($(wc -l < "$tmp/tpe-values.txt") checkpoints)" \
      /usr/bin/python3 - "$out/study.h5" "$tmp/tpe-values.txt" <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
ids = sorted(int(i) for i in t["id"][()])
assert ids == list(range(11)), ids
lr = dict(zip((int(i) for i in t["id"][()]), t["train.lr"][()]))
for line in open(sys.argv[2]):
    i, v = line.split()
    assert lr[int(i)] == float(v), (i, v, lr[int(i)])
PY
  else
    check "$kind: the merged study equals a single job's" \
      /usr/bin/python3 "$here/compare_studies.py" "$tmp/$kind-single/study.h5" "$out/study.h5"
  fi
  check "$kind: report reads the merged study" bash -c "'$bin' report '$out/study.h5' > /dev/null"
done

# bad input, on the finished grid study
bad() {  # bad NAME EXPECTED-TEXT COMMAND...: exit 2 and one line naming it
  local log=$tmp/bad.log
  "${@:3}" > "$log" 2>&1
  local s=$?
  check "$1: exit 2 ($s), says '$2'" bash -c "[[ $s -eq 2 ]] && grep -q -- '$2' '$log'"
}
bad "another config" "train.lr" timeout 60 mpirun --oversubscribe -np 1 "$bin" sweep "$tmp/grid.toml" \
  --out "$tmp/grid-shared" --shared --set train.lr=0.5
bad "no --shared on a shared study" "add --shared" timeout 60 mpirun --oversubscribe -np 1 "$bin" sweep \
  "$tmp/grid.toml" --out "$tmp/grid-shared"

echo "shared study: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
