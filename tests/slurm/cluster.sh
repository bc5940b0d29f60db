#!/usr/bin/env bash
# A private single-node Slurm for tests: munged, slurmctld and slurmd on this
# machine, every config, key, socket, state and log under one directory,
# ports chosen free. Source it, then:
#   slurm_start DIR   # starts the daemons, waits until the node is idle; exports SLURM_CONF
#   slurm_stop        # stops exactly the daemons it started (by pid)
# Needs Debian's slurm-wlm and munge (jobs/install-deps.sh installs them).

slurm_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{state,spool,log,munge}
  chmod 700 "$SLURM_DIR/munge"
  local host cpus mem ctl_port d_port
  host=$(hostname -s)
  cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  ctl_port=$(slurm_free_port)
  d_port=$(slurm_free_port)
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
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
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
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  /usr/sbin/slurmctld -D -i -f "$SLURM_CONF" > "$SLURM_DIR/log/slurmctld.out" 2>&1 &
  SLURM_CTLD_PID=$!
  /usr/sbin/slurmd -D -f "$SLURM_CONF" > "$SLURM_DIR/log/slurmd.out" 2>&1 &
  SLURM_D_PID=$!
  local i state
  for i in $(seq 1 60); do
    state=$(sinfo -h -o %T 2>/dev/null)
    [[ "$state" == "idle" ]] && return 0
    sleep 0.5
  done
  echo "slurm_start: the node did not become idle (state '$state'); logs in $SLURM_DIR/log" >&2
  tail -5 "$SLURM_DIR"/log/*.log >&2
  return 1
}

slurm_stop() {
  [[ -n "${SLURM_D_PID:-}" ]] && kill "$SLURM_D_PID" 2>/dev/null
  [[ -n "${SLURM_CTLD_PID:-}" ]] && kill "$SLURM_CTLD_PID" 2>/dev/null
  wait "${SLURM_D_PID:-}" "${SLURM_CTLD_PID:-}" 2>/dev/null
  [[ -f "${SLURM_DIR:-}/munge/munged.pid" ]] && kill "$(cat "$SLURM_DIR/munge/munged.pid")" 2>/dev/null
  SLURM_D_PID= SLURM_CTLD_PID=
}
