# Shared by the sbatch scripts (sourced; not a job of its own). The scripts
# trap USR1 and TERM into rs_pending on their first line, before anything else.
#
# rs_setup OUT     finds the program ($RANKSWEEP, else `ranksweep` on PATH,
#                  else build/ranksweep of this checkout), sets OMP_NUM_THREADS
#                  from SLURM_CPUS_PER_TASK, creates OUT and notes the start.
# rs_step ARGS...  srun --mpi=pmix ranksweep ARGS, with USR1/TERM sent to this
#                  script (--signal=B:USR1@N) forwarded to the job step (after
#                  its first 5 s); sets $rs_rc.
# rs_finish OUT    exit status 75 from the program ("stopped early, checkpoint
#                  written"): requeue this job, unless RANKSWEEP_MAX_IDLE_RESTARTS
#                  (default 2) restarts in a row wrote nothing under OUT;
#                  anything else: exit with it.

rs_log() { echo "[$(date '+%F %T')] slurm job ${SLURM_JOB_ID:-?}: $*"; }

rs_setup() {
  local out=$1 checkout
  if [[ -z "${SLURM_JOB_ID:-}" ]]; then
    echo "error: $(basename "$0") is a Slurm batch script: submit it with sbatch (outside Slurm, run ranksweep" \
      "itself, e.g. under mpirun)" >&2
    exit 2
  fi
  if [[ -n "${RANKSWEEP:-}" ]]; then
    RS=$RANKSWEEP
  elif command -v ranksweep >/dev/null; then
    RS=$(command -v ranksweep)
  else
    checkout=$(cd "$RS_SCRIPT_DIR/../.." && pwd)
    RS=$checkout/build/ranksweep
  fi
  [[ -x "$RS" ]] || { rs_log "error: no ranksweep program (tried \$RANKSWEEP, PATH, $RS)"; exit 2; }
  [[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
  [[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mkdir -p "$out"
  touch "$out/.slurm-job-start${SLURM_ARRAY_TASK_ID:+.$SLURM_ARRAY_TASK_ID}"  # an array's tasks: one each
  rs_log "restart ${SLURM_RESTART_COUNT:-0}, $SLURM_JOB_NUM_NODES node(s), ${SLURM_NTASKS:-1} task(s), program $RS"
}

rs_step() {
  srun --mpi=pmix "$RS" "$@" &
  local step=$! started=$SECONDS reaped=""
  # USR1/TERM to this script (trapped from its first line on, into rs_pending) go to the step, but not in
  # its first 5 s: Slurm may send --signal's warning up to 60 s early, i.e. at once in a short job, before
  # the program has installed its handlers.
  while kill -0 "$step" 2>/dev/null; do
    if [[ -n ${rs_pending:-} ]]; then
      if ((SECONDS - started < 5)); then
        sleep 1
        continue
      fi
      rs_log "$rs_pending: forwarding to the job step"
      kill -"$rs_pending" "$step" 2>/dev/null
      rs_pending=""
    fi
    wait "$step"  # a trapped signal ends it early: then loop
    rs_rc=$? reaped=1
    kill -0 "$step" 2>/dev/null && reaped=""
  done
  if [[ -z $reaped ]]; then
    wait "$step"
    rs_rc=$?
  fi
}

rs_finish() {
  local out=$1 idle=0 job
  local state=$out/.slurm-requeue${SLURM_ARRAY_TASK_ID:+.$SLURM_ARRAY_TASK_ID}
  local start=$out/.slurm-job-start${SLURM_ARRAY_TASK_ID:+.$SLURM_ARRAY_TASK_ID}
  if [[ $rs_rc -ne 75 ]]; then
    rs_log "done, status $rs_rc"
    exit "$rs_rc"
  fi
  [[ -f $state ]] && idle=$(cat "$state")
  if [[ -n $(find "$out" -name '*.h5' -newer "$start" -print -quit) ]]; then
    idle=0
  else
    idle=$((idle + 1))
  fi
  echo "$idle" > "$state"
  if ((idle > ${RANKSWEEP_MAX_IDLE_RESTARTS:-2})); then
    rs_log "stopped early $idle times in a row without writing anything under $out: not requeueing"
    exit 75
  fi
  job=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
  job=${job:-$SLURM_JOB_ID}
  rs_log "stopped early with a checkpoint: requeueing $job"
  scontrol requeue "$job"
  exit 0
}
