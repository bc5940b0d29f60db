#!/usr/bin/env bash
# An emulated cluster on this machine: each "node" is a set of new UTS, mount
# and IPC namespaces with its own hostname (n1, n2, ...), its own tmpfs on
# /dev/shm and its own /tmp (a per-node directory bound over it), so that
# MPI_COMM_TYPE_SHARED splits ranks by node and ranks on different nodes talk
# TCP over loopback. mpirun reaches the nodes through an ssh stand-in that
# enters the node's namespaces. Runs one command across the nodes, then stops
# exactly what it started (by pid). Needs root (mount namespaces).
#
# usage: tests/cluster.sh --hosts n1:2,n2:1 [--] PROGRAM ARGS...
#        (mpirun -np <sum> with that host list; nodes n1..nK as named)
# The working directory must exist on every node: it is the caller's (not
# under /tmp, which each node replaces). Exit status: the program's, 77 when
# this machine cannot make the namespaces.
set -euo pipefail
hosts=n1:1,n2:1
while [[ $# -gt 0 ]]; do
  case $1 in
    --hosts) hosts=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: tests/cluster.sh --hosts n1:2,n2:1 [--] PROGRAM ARGS..." >&2; exit 2; }
if [[ $PWD == /tmp || $PWD == /tmp/* ]]; then
  echo "cluster.sh: the working directory $PWD is under /tmp, which each node replaces" >&2
  exit 2
fi

# RS_CLUSTER_DIR: the state directory to use (made here; a test reads nK.pid there to act on a node).
if [[ -n ${RS_CLUSTER_DIR:-} ]]; then
  state=$RS_CLUSTER_DIR
  mkdir "$state"
else
  state=$(mktemp -d /var/tmp/ranksweep-cluster.XXXXXX)
fi
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$state"
}
trap stop EXIT

np=0
for entry in ${hosts//,/ }; do
  node=${entry%%:*} slots=${entry##*:}
  [[ $node =~ ^n[0-9]+$ && $slots =~ ^[0-9]+$ ]] || { echo "cluster.sh: bad host entry '$entry'" >&2; exit 2; }
  np=$((np + slots))
  mkdir -p "$state/$node/tmp"
  # The node: a process that holds the namespaces (unshare execs bash, so $! is it).
  unshare --uts --mount --ipc --propagation private bash -c \
    "hostname $node && mount -t tmpfs tmpfs /dev/shm && mount --bind '$state/$node/tmp' /tmp && touch '$state/$node/up' && exec sleep infinity" &
  pids+=($!)
  echo $! >"$state/$node.pid"
done
for entry in ${hosts//,/ }; do
  node=${entry%%:*}
  for _ in $(seq 50); do [[ -e $state/$node/up ]] && break; sleep 0.1; done
  if [[ ! -e $state/$node/up ]]; then
    echo "cluster.sh: cannot make node $node's namespaces here (unshare --mount needs root)" >&2
    exit 77
  fi
done

# The ssh stand-in: rsh NODE [options] COMMAND -> the command inside NODE's namespaces.
cat >"$state/rsh" <<EOF
#!/bin/bash
node=\$1; shift
while [[ \$1 == -* ]]; do shift; done
exec nsenter -t "\$(cat '$state'/\$node.pid)" -u -m -i -- /bin/sh -c "\$*"
EOF
chmod +x "$state/rsh"

# Each node's daemon believes it owns the machine and would bind its first
# rank to core 0: no binding (the OS spreads the ranks).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
env=()
for v in OMP_NUM_THREADS RS_TEST_GROUP; do [[ -n ${!v:-} ]] && env+=(-x "$v"); done
set +e
mpirun --mca plm_rsh_agent "$state/rsh" --mca plm_rsh_no_tree_spawn 1 --mca btl tcp,self,vader \
  --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo --host "$hosts" --bind-to none --oversubscribe \
  -np "$np" "${env[@]}" "$@"
rc=$?
set -e
exit $rc
