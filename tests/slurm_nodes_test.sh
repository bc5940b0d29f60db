#!/usr/bin/env bash
# The job scripts on a private 2-node Slurm (tests/slurm/cluster.sh with
# emulated nodes: one slurmd per node namespace): sweep.sbatch across both
# nodes, stopped by USR1 mid-trial, requeued, and equal to the uninterrupted
# sweep; pipeline.sbatch with a rank group spanning both nodes, its sweep
# equal to the same sweep on one node, then inference. Stops exactly the
# daemons it started. Exit 77 where namespaces cannot be made (not root).
# Usage: slurm_nodes_test.sh path/to/ranksweep
set -u
bin=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /var/tmp/rs-slurm-nodes.XXXXXX)  # not under /tmp: each node has its own
source "$src/tests/slurm/cluster.sh"
trap 'slurm_stop; if ((fail)); then echo "kept $tmp"; else rm -rf "$tmp"; fi' EXIT
unshare --uts --mount true 2>/dev/null || { echo "skipped: cannot make namespaces here (needs root)"; exit 77; }
export RANKSWEEP=$bin OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo  # nodes talk TCP over loopback
source "$src/tests/checks.sh"
py() { /usr/bin/python3 -c "$@"; }
same() { /usr/bin/python3 "$src/tests/compare_studies.py" "$@"; }

slurm_start "$tmp/cluster" 2 || { echo "FAILED: private 2-node Slurm did not start"; fail=1; exit 1; }
check "2 nodes registered idle" test "$(sinfo -h -N -o '%N %T' | tr '\n' ' ')" == "n1 idle n2 idle "
cd "$tmp"
cp "$src/tests/fixtures/grid-sweep.toml" sweep.toml
sb=(sbatch --parsable --gpus-per-task=0 --nodes=2 --ntasks-per-node=1)

# References on this machine without Slurm: single-rank groups, and one group of 2 ranks.
mpirun --oversubscribe -np 2 "$bin" sweep sweep.toml --out ref >ref.log 2>&1
mpirun --oversubscribe -np 2 "$bin" sweep sweep.toml --out ref2 --group-size 2 >ref2.log 2>&1
check "reference sweeps under mpirun" test -f ref/study.h5 -a -f ref2/study.h5

# ---- sweep.sbatch on 2 nodes, USR1 mid-trial: checkpoint, status 75, requeue, finish
id=$("${sb[@]}" --time=10 -o sweep.out "$src/jobs/slurm/sweep.sbatch" sweep.toml sweep)
slurm_signal_mid_sweep "$id" "sweep/study.h5"
r=$(slurm_wait_job "$id")
check "sweep.sbatch on 2 nodes after USR1: COMPLETED 0:0 after 1 restart ($r)" test "$r" == "COMPLETED 0:0 1"
check "sweep.sbatch: the program ran on 2 nodes" grep -q "ranksweep sweep: Slurm job $id, 2 node(s), 2 rank(s)" sweep.out
check "sweep.sbatch: it checkpointed and asked to be requeued" grep -q "stopped early with a checkpoint: requeueing $id" sweep.out
check "sweep.sbatch: trials were interrupted at a step and went on after the restart" grep -q "interrupted" sweep.out
check "sweep.sbatch: every trial once, results equal to the uninterrupted sweep" same ref/study.h5 sweep/study.h5
check "sweep.sbatch: the ranks ran on n1 and n2 (a trial's provenance)" py "
import h5py; b = h5py.File('sweep/trials/0/run.h5').attrs['device_binding']; b = b.decode() if isinstance(b, bytes) else b
assert [l.split()[0] for l in b.splitlines()] == ['n1', 'n2'], b"

# ---- pipeline.sbatch on 2 nodes, one rank group spanning both: the sweep, then inference with its best trial
id=$("${sb[@]}" --time=10 -o pipe.out "$src/jobs/slurm/pipeline.sbatch" sweep.toml pipe \
  /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --group-size 2)
r=$(slurm_wait_job "$id")
check "pipeline.sbatch on 2 nodes: COMPLETED 0:0 ($r)" test "${r% *}" == "COMPLETED 0:0"
check "pipeline.sbatch: sweep and inference ran on 2 nodes" \
  test "$(grep -c "ranksweep sweep: Slurm job $id, 2 node(s), 2 rank(s)" pipe.out)" -eq 1 -a \
  "$(grep -c "^infer: .*2 rank(s)" pipe.out)" -eq 1
check "pipeline.sbatch: a group across 2 nodes finds what a group on one node finds" same ref2/study.h5 pipe/study.h5
check "pipeline.sbatch: 10000 predictions" py "
import h5py; p = h5py.File('pipe/predictions.h5'); assert p['labels'].shape[0] == 10000, p['labels'].shape"

echo "$pass passed, $fail failed"
((fail == 0))
