#!/usr/bin/env bash
# A node lost mid-sweep on an emulated 2-node cluster (tests/cluster.sh): a
# 13-trial grid sweep runs one single-rank group on each node; once two trials
# are recorded, every process of node n2 (its namespace holder, its MPI
# daemon, its rank) is killed with SIGKILL. The job must end within 20 s
# (no hang), study.h5 must open, and the sweep resumed on the full cluster
# must equal an uninterrupted one (grid, one thread per rank: deterministic).
# Usage: cluster_kill.sh path/to/ranksweep
set -u
bin=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/ranksweep-cluster-kill.XXXXXX)  # outside /tmp: every node sees it
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$here/fixtures/grid-sweep.toml" sweep.toml
export OMP_NUM_THREADS=1
sweep() {  # sweep OUT [cluster dir]
  RS_CLUSTER_DIR=${2:-} timeout 300 bash "$here/cluster.sh" --hosts n1:1,n2:1 "$bin" sweep sweep.toml --out "$1" \
    >"$1.log" 2>&1
}
sweep ref
rc=$?
[[ $rc -eq 77 ]] && { echo "cluster_kill: no namespaces on this machine"; exit 77; }
[[ $rc -eq 0 ]] || { echo "FAILED: the uninterrupted sweep (status $rc)"; cat ref.log; exit 1; }

sweep killed "$work/cl" &
job=$!
recorded() {
  [[ $(/usr/bin/python3 "$here/../jobs/ranksweep_study.py" killed/study.h5 2>/dev/null) -ge 2 ]]
}
for _ in $(seq 600); do recorded && break; sleep 0.1; done
ns=$(readlink "/proc/$(cat "$work/cl/n2.pid")/ns/uts")
victims=()
for p in /proc/[0-9]*; do [[ $(readlink "$p/ns/uts" 2>/dev/null) == "$ns" ]] && victims+=("${p#/proc/}"); done
names=$(for v in "${victims[@]}"; do cat "/proc/$v/comm" 2>/dev/null; done | sort -u | tr '\n' ' ')
t0=$(date +%s.%N)
kill -9 "${victims[@]}" 2>/dev/null
ended=0
for _ in $(seq 200); do kill -0 $job 2>/dev/null || { ended=1; break; }; sleep 0.1; done
wait $job
rc=$?
took=$(/usr/bin/python3 -c "print(round($(date +%s.%N) - $t0, 1))")
fail=0
if [[ $ended -eq 1 && $rc -ne 0 ]]; then
  echo "killed ${#victims[@]} processes of n2 (${names% }): the job ended in ${took}s, status $rc"
else
  fail=1
  echo "FAILED: after n2 was killed the job ${ended/0/did not end within 20 s}${ended/1/ended with status $rc}"
  pkill -9 -f "$bin sweep sweep.toml --out killed"
fi
sweep killed || { fail=1; echo "FAILED: resume on the full cluster"; cat killed.log; }
if /usr/bin/python3 "$here/compare_studies.py" ref/study.h5 killed/study.h5; then
  echo "resumed on both nodes: the same trials and results as the uninterrupted sweep"
else
  fail=1
fi
exit $fail
