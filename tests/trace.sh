#!/usr/bin/env bash
# --trace FILE: a 2-rank train (the MLP, 2 epochs: the first steps of each
# epoch one by one, the rest as one span), a 2-group sweep and a 2-rank infer
# each write Chrome trace-event JSON that tests/trace_check.py accepts: one
# process per rank named host:rank, spans that nest and come in order per
# thread, spans of work (all but the grouping epoch and trial) covering >= 90%
# of each rank's time, and the phases
# named. A --trace into a directory that does not exist: exit 2, one line,
# before any work.
# Usage: trace.sh path/to/ranksweep
set -u
bin=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1
images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
source "$here/checks.sh"
run() {  # run LOG COMMAND...: the command's output to LOG, shown when it fails
  "${@:2}" > "$tmp/$1" 2>&1 || { cat "$tmp/$1"; return 1; }
}
mpi=(mpirun --oversubscribe -np 2)
trace_ok() { /usr/bin/python3 "$here/trace_check.py" "$@"; }

check "2-rank train with --trace" run train.log "${mpi[@]}" "$bin" train "$here/../inputs/fmnist-mlp.toml" \
  --set train.epochs=2 --set data.validation=50000 --out "$tmp/run" --trace "$tmp/train.json"
check "train trace" trace_ok "$tmp/train.json" 2 "load and broadcast data" "broadcast model" data forward \
  backward exchange optimizer steps epoch evaluate checkpoint
check "2-group sweep with --trace" run sweep.log "${mpi[@]}" "$bin" sweep "$here/fixtures/grid-sweep.toml" \
  --group-size 1 --out "$tmp/sweep" --trace "$tmp/sweep.json"
check "sweep trace" trace_ok "$tmp/sweep.json" 2 trial "wait for a trial" data forward backward epoch checkpoint
check "the coordinator's writes on rank 0's coordinator thread" /usr/bin/python3 - "$tmp/sweep.json" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
tid = [e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name" and e["args"]["name"] == "coordinator"]
writes = [e for e in ev if e["ph"] == "X" and e["name"] == "write results" and e["pid"] == 0 and e["tid"] in tid]
trials = sorted(e["args"]["trial"] for e in ev if e["ph"] == "X" and e["name"] == "trial")
groups = {e["args"]["group"] for e in ev if e["ph"] == "X" and e["name"] == "trial"}
print(f"{len(writes)} writes, trials {trials}, groups {sorted(groups)}")
sys.exit(0 if writes and trials == list(range(13)) and groups == {0, 1} else 1)
PY
check "2-rank infer with --trace" run infer.log "${mpi[@]}" "$bin" infer --model "$tmp/run/run.h5" \
  --data "$images" --out "$tmp/pred.h5" --trace "$tmp/infer.json"
check "infer trace" trace_ok "$tmp/infer.json" 2 "load model" "read input" forward "gather predictions"

bad_dir() {
  "${mpi[@]}" "$bin" train "$here/../inputs/fmnist-mlp.toml" --out "$tmp/never" --trace "$tmp/no/such/t.json" \
    > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  grep -v '^\[' "$tmp/err" | grep -v '^$' > "$tmp/err1"  # mpirun's own lines aside
  echo "exit $rc: $(cat "$tmp/err1")"
  [[ $rc -eq 2 && $(grep -c 'trace' "$tmp/err1") -eq 1 && ! -e $tmp/never/run.h5 ]]
}
check "--trace into a missing directory" bad_dir
[[ $fail -eq 0 ]] || { echo "$fail check(s) failed"; exit 1; }
