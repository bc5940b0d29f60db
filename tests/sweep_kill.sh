#!/usr/bin/env bash
# Kill a sweep (SIGKILL to every rank) at a random moment, check that
# study.h5 still opens, resume it with the same command, and compare with an
# uninterrupted sweep: the same set of trials, each exactly once, with the
# same results (group size 1, one thread per rank: results are deterministic
# whichever group runs a trial and whether it restarted from a checkpoint).
# Usage: sweep_kill.sh path/to/ranksweep [ROUNDS=2]
set -u
bin=$1
rounds=${2:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$(dirname "$0")/fixtures/grid-sweep.toml" "$tmp/sweep.toml"
run() {  # run OUT [CONFIG]
  OMP_NUM_THREADS=1 timeout 300 mpirun --oversubscribe -np 2 "$bin" sweep "${2:-$tmp/sweep.toml}" --out "$1" >/dev/null 2>&1
}
# kill_at_random OUT CONFIG LOW HIGH: start the sweep, SIGKILL every rank after
# a random delay in [LOW, HIGH] s; sets $delay and $before (trials recorded in
# study.h5 and its journal, or an error text with status 1 when they do not read).
kill_at_random() {
  local out=$1 cfg=$2 pid
  setsid bash -c "OMP_NUM_THREADS=1 exec mpirun --oversubscribe -np 2 '$bin' sweep '$cfg' --out '$out'" >/dev/null 2>&1 &
  pid=$!
  delay=$(/usr/bin/python3 -c "import random; print(round(random.uniform($3, $4), 2))")
  sleep "$delay"
  kill -9 -- -"$pid" 2>/dev/null
  pkill -9 -f "ranksweep sweep $cfg --out $out" 2>/dev/null
  wait "$pid" 2>/dev/null
  before=$(/usr/bin/python3 "$(dirname "$0")/../jobs/ranksweep_study.py" "$out/study.h5" 2>&1)
}
fail=0 pass=0
t0=$(date +%s.%N)
run "$tmp/ref" || { echo "FAILED: reference sweep"; exit 1; }
# kill within 15-75% of an uninterrupted sweep's time, so the kill lands mid-sweep
read -r lo hi < <(/usr/bin/python3 -c "d = $(date +%s.%N) - $t0; print(round(0.15 * d, 2), round(0.75 * d, 2))")
for ((k = 0; k < rounds; k++)); do
  out=$tmp/killed-$k
  kill_at_random "$out" "$tmp/sweep.toml" "$lo" "$hi" || { fail=$((fail + 1)); echo "FAILED: study.h5 does not open after the kill: $before"; continue; }
  run "$out" || { fail=$((fail + 1)); echo "FAILED: resume"; continue; }
  if /usr/bin/python3 "$(dirname "$0")/compare_studies.py" "$tmp/ref/study.h5" "$out/study.h5"
  then
    pass=$((pass + 1))
    echo "round $k: killed after ${delay}s with $before trial(s) recorded; resumed: same $(/usr/bin/python3 -c "import h5py;print(len(h5py.File('$out/study.h5')['trials/id']))") trials, same results"
  else
    fail=$((fail + 1))
  fi
done
# With ASHA the results depend on the order in which trials reach the rungs
# (two groups race), so a killed and resumed sweep is checked for what must
# hold whatever the order: every trial once, each stopped at a rung or run to
# its full epochs, and a trial paused at a rung promoted from its checkpoint.
sed -e 's/^epochs = 3/epochs = 4/' "$tmp/sweep.toml" > "$tmp/asha.toml"
printf '[sweep.asha]\nmin_epochs = 1\nreduction = 2\n' >> "$tmp/asha.toml"
out=$tmp/asha
if kill_at_random "$out" "$tmp/asha.toml" "$lo" "$hi" && run "$out" "$tmp/asha.toml" &&
  /usr/bin/python3 - "$out/study.h5" <<'PY'
import sys, h5py
t = h5py.File(sys.argv[1], "r")["trials"]
ids, ep = list(t["id"][()]), list(t["epochs"][()])
st = [s.decode() if isinstance(s, bytes) else s for s in t["status"][()]]
assert sorted(ids) == list(range(13)), f"trials: {sorted(ids)}"
for i, e, s in zip(ids, ep, st):
    assert (s, e) in {("pruned", 1), ("pruned", 2), ("completed", 4)} or s == "diverged", f"trial {i}: {s} after {e}"
assert sum(s == "completed" for s in st) >= 2, "nothing was promoted to the full budget"
PY
then
  pass=$((pass + 1))
  echo "asha: killed after ${delay}s with $before trial(s) recorded; resumed: 13 trials once each, every one at a rung or its full budget"
else
  fail=$((fail + 1))
  echo "FAILED: ASHA sweep killed after ${delay}s and resumed"
fi

echo "sweep kill/resume: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
