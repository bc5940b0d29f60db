#!/usr/bin/env bash
# Scaling study: data-parallel training (strong and weak scaling) and sweep
# throughput (trials/hour as single-rank groups are added), with repetitions.
# Under Slurm every point is its own job (submitted at once, then awaited);
# with --launcher mpirun the same points run one after another on this machine;
# with --launcher cluster on nodes emulated on this machine (tests/cluster.sh:
# namespaces per node, TCP over loopback; needs root and a checkout).
#
#   bash jobs/slurm/scaling.sh --nodes 1,2,4 --ranks-per-node 4 inputs/fmnist-cnn.toml
#   bash jobs/slurm/scaling.sh --launcher mpirun --nodes 1 --ranks-per-node 2 --reps 3 inputs/fmnist-mlp.toml
#   bash jobs/slurm/scaling.sh --launcher cluster --nodes 1,2 --ranks-per-node 1 --samples 12800 inputs/fmnist-cnn.toml
#
# Options: --nodes LIST (1)  --ranks-per-node N (2)  --reps N (3)  --launcher slurm|mpirun|cluster (slurm if sbatch exists)
#   --threads N per rank (1)  --samples N training samples per rank-1 run (6400)  --batch N per rank (64)
#   --trials N sweep trials (4, 1 epoch each)  --out DIR (runs/scaling)  --sbatch "ARGS" (extra sbatch options,
#   e.g. "--gpus-per-task=0 --time=30")
# Points: 1 rank, then NODES x RANKS_PER_NODE ranks for each node count.
#   strong: global batch BATCH, SAMPLES samples;  weak: batch and samples times the ranks;
#   sweep:  TRIALS trials of CONFIG's model (learning rates), 1 epoch on SAMPLES samples, one group per rank.
# Output: DIR/scaling.h5, DIR/scaling.csv, DIR/scaling.md (speedup, efficiency, phase breakdown: compute,
# allreduce, broadcast, data; min/median/max over repetitions) and DIR/scaling.png (jobs/plot_scaling.py).
# With a 2-node point of 1 rank a node (slurm or cluster), also a projection to 1-256 nodes: the exchange
# between 2 nodes measured (tests/bench_exchange) and fitted to an alpha-beta model, the compute taken from
# the 1-rank and 2-node strong runs: DIR/projection.md and DIR/projection.png (jobs/project_scaling.py), a
# model kept apart from the measured points.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nodes=1 rpn=2 reps=3 threads=1 samples=6400 batch=64 trials=4 out=runs/scaling extra=""
launcher=$(command -v sbatch >/dev/null && echo slurm || echo mpirun)
while [[ $# -gt 1 ]]; do
  case $1 in
    --nodes) nodes=$2 ;; --ranks-per-node) rpn=$2 ;; --reps) reps=$2 ;; --launcher) launcher=$2 ;;
    --threads) threads=$2 ;; --samples) samples=$2 ;; --batch) batch=$2 ;; --trials) trials=$2 ;;
    --out) out=$2 ;; --sbatch) extra=$2 ;;
    *) echo "scaling: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ $# -eq 1 ]] || { echo "usage: scaling.sh [options] CONFIG (see the header)" >&2; exit 2; }
[[ $launcher =~ ^(slurm|mpirun|cluster)$ ]] || { echo "scaling: --launcher is slurm, mpirun or cluster" >&2; exit 2; }
config=$(realpath "$1")
RS=${RANKSWEEP:-$(command -v ranksweep || echo "$here/../../build/ranksweep")}
RS=$(realpath "$RS")
[[ -x $RS ]] || { echo "scaling: no ranksweep program at $RS (bash jobs/build.sh)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out/runs" "$out/logs"
out=$(realpath "$out")
if [[ $launcher == cluster && $out == /tmp/* ]]; then
  echo "scaling: --out $out is under /tmp, which each emulated node replaces" >&2
  exit 2
fi

points=(1:1)  # nodes:ranks
IFS=, read -ra nl <<<"$nodes"
for n in "${nl[@]}"; do
  r=$((n * rpn))
  [[ $r -gt 1 ]] && points+=("$n:$r")
done

# The sweep: CONFIG's model, TRIALS learning rates, 1 epoch each.
lrs=$(/usr/bin/python3 -c "print(', '.join(str(round(0.003 * 2 ** i, 4)) for i in range($trials - 1)))")
cp "$config" "$out/sweep.toml"
printf '\n[sweep]\nmethod = "grid"\n[sweep.space]\n"train.lr" = [%s]\n' "$lrs" >>"$out/sweep.toml"

ids=()
hosts() {  # hosts NODES RANKS_PER_NODE -> n1:R,n2:R,...
  local k list=""
  for ((k = 1; k <= $1; k++)); do list+="${list:+,}n$k:$2"; done
  echo "$list"
}
run_point() {  # run_point MODE NODES RANKS REP
  local mode=$1 n=$2 r=$3 rep=$4 dir gb s args
  dir=$out/runs/$mode-$r-$rep
  rm -rf "$dir"
  gb=$batch s=$samples
  [[ $mode == weak ]] && gb=$((batch * r)) s=$((samples * r))
  ((s <= 59000)) || { echo "scaling: $mode at $r ranks needs $s samples (> 59000): fewer --samples" >&2; exit 2; }
  if [[ $mode == sweep ]]; then
    args=(sweep "$out/sweep.toml" --out "$dir" --group-size 1 --set train.epochs=1)
  else
    args=(train "$config" --out "$dir" --set train.epochs=1 --set "train.batch_size=$gb")
  fi
  args+=(--set "data.validation=$((60000 - s))" --set 'data.test_images=""' --set 'data.test_labels=""')
  if [[ $launcher == mpirun ]]; then
    echo "$mode ranks=$r rep=$rep"
    OMP_NUM_THREADS=$threads mpirun --oversubscribe --bind-to core -np "$r" "$RS" "${args[@]}" \
      >"$out/logs/$mode-$r-$rep.out" 2>&1
  elif [[ $launcher == cluster ]]; then
    echo "$mode nodes=$n ranks=$r rep=$rep"
    (cd "$out" && OMP_NUM_THREADS=$threads bash "$here/../../tests/cluster.sh" --hosts "$(hosts "$n" "$((r / n))")" \
      "$RS" "${args[@]}" >"$out/logs/$mode-$r-$rep.out" 2>&1)
  else
    # shellcheck disable=SC2086
    ids+=("$(sbatch --parsable --job-name="rs-scale-$mode-$r" --nodes="$n" --ntasks-per-node=$((r / n)) \
      --output="$out/logs/$mode-$r-$rep.out" $extra \
      --wrap="OMP_NUM_THREADS=$threads srun --mpi=pmix $(printf '%q ' "$RS" "${args[@]}")")")
  fi
}
for rep in $(seq 1 "$reps"); do
  for p in "${points[@]}"; do
    for mode in strong weak sweep; do
      run_point "$mode" "${p%:*}" "${p#*:}" "$rep"
    done
  done
done
if [[ $launcher == slurm ]]; then
  echo "scaling: submitted ${#ids[@]} jobs (${ids[*]}); waiting"
  while [[ -n $(squeue -h -j "$(IFS=,; echo "${ids[*]}")" 2>/dev/null) ]]; do sleep 5; done
fi

/usr/bin/python3 - "$out" "$config" "$threads" "$samples" "$batch" "$launcher" "$rpn" <<'PY'
import csv, glob, os, sys
import h5py, numpy as np
out, config, threads, samples, batch, launcher = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rpn = int(sys.argv[7])
nodes_of = lambda r: 1 if r == 1 else max(1, r // rpn)
runs = {}
for d in sorted(glob.glob(os.path.join(out, "runs", "*"))):
    mode, r, rep = os.path.basename(d).rsplit("-", 2)
    f = os.path.join(d, "study.h5" if mode == "sweep" else "run.h5")
    if not os.path.exists(f):
        print(f"scaling: {d}: no result (see {out}/logs/{mode}-{r}-{rep}.out)")
        continue
    with h5py.File(f, "r") as h:
        if mode == "sweep":
            n = len(h["trials/id"])
            rec = {"value": n / h.attrs["sweep_seconds"] * 3600}
        else:
            hist = h["history"]
            t = hist["train_seconds"][-1]
            rec = {"value": hist["images_per_second"][-1],
                   "compute": (hist["time_forward"][-1] + hist["time_backward"][-1] + hist["time_optimizer"][-1]) / t,
                   "allreduce": hist["time_allreduce"][-1] / t, "broadcast": hist["time_broadcast"][-1],
                   "data": hist["time_data"][-1] / t}
    runs.setdefault(mode, {}).setdefault(int(r), []).append(rec)
rows = []
with h5py.File(os.path.join(out, "scaling.h5"), "w") as f:
    f.attrs.update(config=config, threads_per_rank=threads, samples=samples, batch=batch, launcher=launcher,
                   ranks_per_node=rpn)
    for mode, by_r in runs.items():
        g = f.create_group(mode)
        ranks = np.array(sorted(by_r))
        vals = [np.array([x["value"] for x in by_r[r]]) for r in ranks]
        med = np.array([np.median(v) for v in vals])
        g["ranks"] = ranks
        g["nodes"] = np.array([nodes_of(int(r)) for r in ranks])
        g["repetitions"] = np.array([len(v) for v in vals])
        g["min"], g["median"], g["max"] = np.array([v.min() for v in vals]), med, np.array([v.max() for v in vals])
        g["speedup"] = med / med[0]
        g["speedup_min"] = np.array([v.min() for v in vals]) / med[0]
        g["speedup_max"] = np.array([v.max() for v in vals]) / med[0]
        g["efficiency"] = med / med[0] / ranks
        g.attrs["unit"] = "trials/hour" if mode == "sweep" else "training images/s"
        for k in ("compute", "allreduce", "broadcast", "data"):
            if mode != "sweep":
                g[k] = np.array([np.median([x[k] for x in by_r[r]]) for r in ranks])
        for i, r in enumerate(ranks):
            rows.append({"mode": mode, "nodes": nodes_of(int(r)), "ranks": int(r), "reps": len(vals[i]), "unit": g.attrs["unit"],
                         "min": round(float(g["min"][i]), 1), "median": round(float(med[i]), 1),
                         "max": round(float(g["max"][i]), 1), "speedup": round(float(g["speedup"][i]), 2),
                         "efficiency_%": round(100 * float(g["efficiency"][i])),
                         **({k: round(100 * float(g[k][i]), 1) for k in ("compute", "allreduce", "data")}
                            if mode != "sweep" else {}),
                         **({"broadcast_s": round(float(g["broadcast"][i]), 2)} if mode != "sweep" else {})})
keys = ["mode", "nodes", "ranks", "reps", "unit", "min", "median", "max", "speedup", "efficiency_%", "compute", "allreduce",
        "data", "broadcast_s"]
with open(os.path.join(out, "scaling.csv"), "w", newline="") as c:
    w = csv.DictWriter(c, keys)
    w.writeheader()
    w.writerows(rows)
with open(os.path.join(out, "scaling.md"), "w") as m:
    m.write(f"{os.path.basename(config)}, {threads} thread(s) per rank, {samples} samples, batch {batch}, {launcher}\n\n")
    m.write("| mode | nodes | ranks | reps | median (min..max) | speedup | efficiency | compute % | exchange % | data % | load+bcast s |\n")
    m.write("|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        m.write(f"| {r['mode']} | {r['nodes']} | {r['ranks']} | {r['reps']} | {r['median']} ({r['min']}..{r['max']}) {r['unit']} | "
                f"{r['speedup']}x | {r['efficiency_%']}% | {r.get('compute', '-')} | {r.get('allreduce', '-')} | "
                f"{r.get('data', '-')} | {r.get('broadcast_s', '-')} |\n")
print(open(os.path.join(out, "scaling.md")).read())
PY
/usr/bin/python3 "$here/../plot_scaling.py" "$out/scaling.h5" -o "$out/scaling.png"

# The projection: needs the 1-rank and the 2-node x 1-rank strong runs and the exchange between 2 nodes.
if [[ $launcher != mpirun && $rpn -eq 1 && -f $out/runs/strong-2-1/run.h5 && -f $out/runs/strong-1-1/run.h5 ]]; then
  bench=${BENCH_EXCHANGE:-$here/../../build/tests/bench_exchange}
  if [[ ! -x $bench ]]; then
    echo "scaling: no $bench (build the tests) for the projection"
  elif [[ $launcher == cluster ]]; then
    (cd "$out" && bash "$here/../../tests/cluster.sh" --hosts n1:1,n2:1 "$(realpath "$bench")" >"$out/exchange.txt")
  else
    # shellcheck disable=SC2086
    sbatch --wait --nodes=2 --ntasks-per-node=1 --output="$out/exchange.txt" $extra \
      --wrap="srun --mpi=pmix $(printf '%q' "$(realpath "$bench")")" >/dev/null
  fi
  [[ -s $out/exchange.txt ]] && /usr/bin/python3 "$here/../project_scaling.py" "$out/exchange.txt" \
    "$out/runs/strong-1-1/run.h5" "$out/runs/strong-2-1/run.h5" -o "$out/projection.png" --md "$out/projection.md"
fi
