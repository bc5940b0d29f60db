#!/usr/bin/env bash
# Placement on an emulated 2-node cluster (tests/cluster.sh), 2 ranks a node:
# the first line counts 2 nodes, each node's ranks get local ranks 0 and 1
# (what picks a rank's GPU), and the run file records host, rank and local
# rank of every rank.
# Usage: cluster_binding.sh path/to/ranksweep
set -u
bin=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/ranksweep-cluster-binding.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf '[data]\nvalidation = 59000\n[model]\nhidden = [8]\n[train]\nepochs = 1\n' >t.toml
OMP_NUM_THREADS=1 timeout 300 bash "$here/cluster.sh" --hosts n1:2,n2:2 "$bin" train t.toml --out "$work/out" -v \
  --trace "$work/trace.json" >log 2>&1
rc=$?
[[ $rc -eq 77 ]] && exit 77
[[ $rc -eq 0 ]] || { echo "FAILED: training on 2 x 2 (status $rc)"; cat log; exit 1; }
want=$'n1 rank 0 local 0 cpu\nn1 rank 1 local 1 cpu\nn2 rank 2 local 0 cpu\nn2 rank 3 local 1 cpu'
head -1 log | grep -q "2 node(s), 4 rank(s)" || { echo "FAILED: first line: $(head -1 log)"; exit 1; }
/usr/bin/python3 - out/run.h5 "$want" <<'PY' || exit 1
import sys, h5py
got = h5py.File(sys.argv[1], "r").attrs["device_binding"]
got = got.decode() if isinstance(got, bytes) else got
assert got == sys.argv[2], f"FAILED: binding recorded as {got!r}"
print("2 nodes x 2 ranks: local ranks 0 and 1 on each node, recorded in the run file")
PY
/usr/bin/python3 "$here/trace_check.py" "$work/trace.json" 4 exchange "exchange (shards across nodes)" || exit 1
/usr/bin/python3 - "$work/trace.json" <<'PY' || exit 1
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = sorted(e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name")
assert names == ["n1:0", "n1:1", "n2:2", "n2:3"], f"FAILED: trace processes {names}"
print("trace: one process per rank, named node:rank")
PY
