#!/usr/bin/env bash
# A private Slurm for tests: munged, slurmctld and slurmd on this machine,
# every config, key, socket, state and log under one directory, ports chosen
# free. Source it, then:
#   slurm_start DIR [NODES]  # starts the daemons, waits until every node is idle; exports SLURM_CONF
#   slurm_wait_job ID [SECS] # waits for a job to leave the queue (see below)
#   slurm_signal_mid_sweep ID STUDY.h5  # USR1 to a sweep job once two trials are done
#   slurm_stop               # stops exactly the daemons it started (by pid)
# With NODES (1-3), the nodes are emulated as tests/cluster.sh makes them:
# n1..nNODES, one slurmd each in its own UTS, mount and IPC namespaces (own
# host name, /dev/shm and /tmp), so a job's ranks on different nodes talk TCP
# over loopback (export OMPI_MCA_btl_tcp_if_include=lo). DIR and the jobs'
# working directories must then be outside /tmp. Needs root.
# Needs Debian's slurm-wlm and munge (jobs/install-deps.sh installs them).

slurm_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_start() {
  SLURM_DIR=$1
  local emulated=${2:-0}
  mkdir -p "$SLURM_DIR"/{state,spool,log,munge}
  chmod 700 "$SLURM_DIR/munge"
  local host cpus mem ctl_port d_port nodes node_lines="" k
  host=$(hostname -s)
  cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  ctl_port=$(slurm_free_port)
  d_port=$(slurm_free_port)
  nodes=$host
  node_lines="NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
  if ((emulated > 0)); then
    nodes=n[1-$emulated] node_lines=""
    for k in $(seq 1 "$emulated"); do
      node_lines+="NodeName=n$k NodeHostname=n$k NodeAddr=127.0.0.1 Port=$(slurm_free_port) CPUs=$cpus RealMemory=$((mem / emulated)) State=UNKNOWN"$'\n'
    done
  fi
  dd if=/dev/urandom bs=1 count=1024 of="$SLURM_DIR/munge/munge.key" 2>/dev/null
  chmod 400 "$SLURM_DIR/munge/munge.key"
  /usr/sbin/munged --force --key-file="$SLURM_DIR/munge/munge.key" --socket="$SLURM_DIR/munge/munge.socket" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/log/munged.log" \
    --seed-file="$SLURM_DIR/munge/munged.seed" || return 1
  cat > "$SLURM_DIR/slurm.conf" <<CONF
ClusterName=rstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_DIR/munge/munge.socket
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool/%n
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
$node_lines
PartitionName=test Nodes=$nodes Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  /usr/sbin/slurmctld -D -i -f "$SLURM_CONF" > "$SLURM_DIR/log/slurmctld.out" 2>&1 &
  SLURM_CTLD_PID=$!
  SLURM_D_PIDS=()
  if ((emulated == 0)); then
    /usr/sbin/slurmd -D -f "$SLURM_CONF" > "$SLURM_DIR/log/slurmd.out" 2>&1 &
    SLURM_D_PIDS+=($!)
  else
    for k in $(seq 1 "$emulated"); do  # unshare and bash exec: $! is the slurmd
      mkdir -p "$SLURM_DIR/n$k/tmp"
      unshare --uts --mount --ipc --propagation private bash -c "hostname n$k && mount -t tmpfs tmpfs /dev/shm &&
        mount --bind '$SLURM_DIR/n$k/tmp' /tmp && exec /usr/sbin/slurmd -D -N n$k -f '$SLURM_CONF'" \
        > "$SLURM_DIR/log/slurmd-n$k.out" 2>&1 &
      SLURM_D_PIDS+=($!)
    done
  fi
  local i state want=idle
  ((emulated > 1)) && want=$(printf 'idle%.0s\n' $(seq 1 "$emulated"))
  for i in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null)
    [[ "$state" == "$want" ]] && return 0
    sleep 0.5
  done
  echo "slurm_start: the node did not become idle (state '$state'); logs in $SLURM_DIR/log" >&2
  tail -5 "$SLURM_DIR"/log/*.log >&2
  return 1
}

# slurm_wait_job ID [SECONDS]: until the job has left the queue; a requeued job's
# BeginTime hold (Slurm waits ~2 minutes before restarting it) is lifted after
# 5 s (sooner, slurmd still refuses the old run's revoked credential).
# Prints "STATE EXITCODE RESTARTS".
slurm_wait_job() {
  local id=$1 limit=${2:-300} t0=$SECONDS s held=
  while ((SECONDS - t0 < limit)); do
    s=$(squeue -h -j "$id" -o "%T %r" 2>/dev/null)
    [[ -z "$s" ]] && break
    if [[ "$s" == "PENDING BeginTime" ]]; then
      held=${held:-$SECONDS}
      ((SECONDS - held >= 5)) && scontrol update jobid="$id" starttime=now >/dev/null 2>&1 && held=
    fi
    sleep 1
  done
  scontrol show job "$id" -o | sed -E 's/.*JobState=([A-Z_]+).* Restarts=([0-9]+).* ExitCode=([0-9:]+).*/\1 \3 \2/'
}

# slurm_signal_mid_sweep ID STUDY.h5: once the study has two trials (a signal then lands mid-sweep, within
# 2 minutes), USR1 to the job's steps, as Slurm's warning before a time limit.
slurm_signal_mid_sweep() {
  local i n
  for i in $(seq 1 240); do
    n=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../../jobs/ranksweep_study.py" "$2" 2>/dev/null || echo 0)
    [[ "$n" -ge 2 ]] && break
    sleep 0.5
  done
  scancel --signal=USR1 "$1"
}

slurm_stop() {
  local p
  for p in "${SLURM_D_PIDS[@]}" ${SLURM_CTLD_PID:-}; do kill "$p" 2>/dev/null; done
  for p in "${SLURM_D_PIDS[@]}" ${SLURM_CTLD_PID:-}; do wait "$p" 2>/dev/null; done
  [[ -f "${SLURM_DIR:-}/munge/munged.pid" ]] && kill "$(cat "$SLURM_DIR/munge/munged.pid")" 2>/dev/null
  SLURM_D_PIDS=() SLURM_CTLD_PID=
}
