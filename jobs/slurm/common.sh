# Shared by the sbatch scripts (sourced; not a job of its own).
#
# rs_setup OUT     finds the program ($RANKSWEEP, else `ranksweep` on PATH,
#                  else build/ranksweep of this checkout), sets OMP_NUM_THREADS
#                  from SLURM_CPUS_PER_TASK, creates OUT and notes the start.
# rs_step ARGS...  srun --mpi=pmix ranksweep ARGS, with USR1/TERM sent to this
#                  script (--signal=B:USR1@N) forwarded to the job step; sets $rs_rc.
# rs_finish OUT    exit status 75 from the program ("stopped early, checkpoint
#                  written"): requeue this job, unless RANKSWEEP_MAX_IDLE_RESTARTS
#                  (default 2) restarts in a row wrote nothing under OUT;
#                  anything else: exit with it.

rs_log() { echo "[$(date '+%F %T')] slurm job ${SLURM_JOB_ID:-?}: $*"; }

rs_setup() {
  local out=$1 checkout
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
  touch "$out/.slurm-job-start"
  rs_log "restart ${SLURM_RESTART_COUNT:-0}, $SLURM_JOB_NUM_NODES node(s), ${SLURM_NTASKS:-1} task(s), program $RS"
}

rs_step() {
  srun --mpi=pmix "$RS" "$@" &
  local step=$!
  trap 'rs_log "USR1: forwarding to the job step"; kill -USR1 $step 2>/dev/null' USR1
  trap 'rs_log "TERM: forwarding to the job step"; kill -TERM $step 2>/dev/null' TERM
  while true; do  # a trapped signal ends `wait` early: wait again until the step is gone
    wait "$step"
    rs_rc=$?
    kill -0 "$step" 2>/dev/null || break
  done
  trap - USR1 TERM
}

rs_finish() {
  local out=$1 state=$1/.slurm-requeue idle=0 job
  if [[ $rs_rc -ne 75 ]]; then
    rs_log "done, status $rs_rc"
    exit "$rs_rc"
  fi
  [[ -f $state ]] && idle=$(cat "$state")
  if [[ -n $(find "$out" -name '*.h5' -newer "$out/.slurm-job-start" -print -quit) ]]; then
    idle=0
  else
    idle=$((idle + 1))
  fi
  echo "$idle" > "$state"
  if ((idle > ${RANKSWEEP_MAX_IDLE_RESTARTS:-2})); then
    rs_log "stopped early again without writing anything under $out ($idle restarts in a row): not requeueing"
    exit 75
  fi
  job=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
  job=${job:-$SLURM_JOB_ID}
  rs_log "stopped early with a checkpoint: requeueing $job"
  scontrol requeue "$job"
  exit 0
}
