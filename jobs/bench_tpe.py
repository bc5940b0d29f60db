#!/usr/bin/python3
"""Sample efficiency of ranksweep's TPE against its random search and against
Optuna's TPE (Debian's python3-optuna 3.1), on the MLP space of issue 12:
learning rate, width, depth, dropout and weight decay, 2 epochs per trial on
Fashion-MNIST, SEEDS seeds x TRIALS trials each (trial 0, the config's own
values, included in every study). Every trial is trained by ranksweep with one
thread, also Optuna's (it calls `ranksweep train` with the values it
proposes), so the three columns differ only in how they choose the values.
Studies run two at a time (this machine has two cores), each sequential (one
group: classic TPE, no constant liar).

Prints, per method, the median over seeds of the best validation accuracy
after 10, 20 and 30 trials, and writes OUT/tpe_bench.csv (every study's best
after each trial) and OUT/tpe_bench.md.

usage: bench_tpe.py [--bin build/ranksweep] [--seeds 5] [--trials 30] [--out runs/bench-tpe]
"""
import argparse
import concurrent.futures as cf
import csv
import os
import statistics
import subprocess
import sys
import tempfile

import h5py
import numpy as np

CONFIG = """[data]
validation = 5000
[model]
preset = "mlp"
width = 512
depth = 2
dropout = 0.0
[train]
epochs = 2
batch_size = 64
lr = 0.01
momentum = 0.9
weight_decay = 1e-6
seed = 1
[sweep]
method = "{method}"
trials = {searched}
seed = {seed}
[sweep.space]
"train.lr" = {{ distribution = "log_uniform", low = 1e-3, high = 0.3 }}
"model.width" = {{ distribution = "int_uniform", low = 32, high = 1024 }}
"model.depth" = {{ distribution = "int_uniform", low = 1, high = 3 }}
"model.dropout" = {{ distribution = "uniform", low = 0.0, high = 0.5 }}
"train.weight_decay" = {{ distribution = "log_uniform", low = 1e-6, high = 1e-2 }}
"""
DEFAULT = {"train.lr": 0.01, "model.width": 512, "model.depth": 2, "model.dropout": 0.0, "train.weight_decay": 1e-6}
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def ranksweep_study(binary, method, seed, trials, work):
    """Best validation accuracy of trials 0..trials-1 (in trial order) of a ranksweep sweep."""
    d = os.path.join(work, f"{method}-{seed}")
    cfg = d + ".toml"
    with open(cfg, "w") as f:
        f.write(CONFIG.format(method=method, searched=trials - 1, seed=seed))
    # an unfinished study (an interrupted benchmark run with --work) resumes; a finished one is read
    subprocess.run([binary, "sweep", cfg, "--out", d], env=ENV, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(os.path.join(d, "study.h5"), "r") as f:
        ids, val = f["trials/id"][()], f["trials/best_val_accuracy"][()]
    return [float(v) for _, v in sorted(zip(ids, val))]


def optuna_study(binary, seed, trials, work):
    import optuna  # Debian's python3-optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = os.path.join(work, f"optuna-{seed}")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "mlp.toml")
    with open(cfg, "w") as f:  # the same config; Optuna's values arrive with --set
        f.write(CONFIG.split("[sweep]")[0])

    def objective(trial):
        v = {
            "train.lr": trial.suggest_float("train.lr", 1e-3, 0.3, log=True),
            "model.width": trial.suggest_int("model.width", 32, 1024),
            "model.depth": trial.suggest_int("model.depth", 1, 3),
            "model.dropout": trial.suggest_float("model.dropout", 0.0, 0.5),
            "train.weight_decay": trial.suggest_float("train.weight_decay", 1e-6, 1e-2, log=True),
        }
        out = os.path.join(d, str(trial.number))
        if os.path.exists(out):  # a trial of an interrupted benchmark run
            subprocess.run(["rm", "-rf", out], check=True)
        sets = [a for k, x in v.items() for a in ("--set", f"{k}={x!r}")]
        r = subprocess.run([binary, "train", cfg, "--out", out] + sets, env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode == 1 and "diverged" in r.stderr:
            return float("nan")  # Optuna records the trial as failed and its sampler leaves it out
        if r.returncode != 0:
            raise RuntimeError(f"ranksweep train: status {r.returncode}: {r.stderr.strip()}")
        with h5py.File(os.path.join(out, "run.h5"), "r") as f:
            return float(np.nanmax(f["history/val_accuracy"][()]))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # trial 0 is the config's own values, as in ranksweep
    study.enqueue_trial(DEFAULT, skip_if_exists=False)
    study.optimize(objective, n_trials=trials)
    # a failed (diverged) trial has no value: no result, as a diverged ranksweep trial (accuracy 0)
    return [t.value if t.value is not None else 0.0 for t in sorted(study.trials, key=lambda t: t.number)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/ranksweep")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--out", default="runs/bench-tpe")
    ap.add_argument("--methods", default="tpe,random,optuna")
    ap.add_argument("--work", help="the work directory of an interrupted run: its studies are resumed or reused")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = a.work or tempfile.mkdtemp(prefix="bench-tpe-", dir=a.out)
    methods = a.methods.split(",")
    jobs = {}
    with cf.ThreadPoolExecutor(max_workers=2) as pool:  # two studies at a time, one core each
        for seed in range(1, a.seeds + 1):
            for m in methods:
                if m == "optuna":
                    jobs[m, seed] = pool.submit(optuna_study, a.bin, seed, a.trials, work)
                else:
                    jobs[m, seed] = pool.submit(ranksweep_study, a.bin, m, seed, a.trials, work)
        vals = {k: j.result() for k, j in jobs.items()}
    marks = sorted({n for n in (10, 20, 30) if n <= a.trials} | {a.trials})
    with open(os.path.join(a.out, "tpe_bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed"] + [f"best_after_{n}" for n in range(1, a.trials + 1)])
        for (m, seed), v in sorted(vals.items()):
            w.writerow([m, seed] + [f"{x:.4f}" for x in np.maximum.accumulate(v)])
    names = {"tpe": "ranksweep TPE", "random": "ranksweep random", "optuna": "Optuna TPE (3.1)"}
    lines = [f"median over {a.seeds} seeds of the best validation accuracy (%) after N trials "
             f"(MLP space, 2 epochs per trial, Fashion-MNIST)", "",
             "| method | " + " | ".join(f"after {n}" for n in marks) + " | per seed after " + str(marks[-1]) + " |",
             "|---|" + "---|" * (len(marks) + 1)]
    for m in methods:
        bests = {n: [max(vals[m, s][:n]) for s in range(1, a.seeds + 1)] for n in marks}
        per_seed = " ".join(f"{100 * x:.2f}" for x in bests[marks[-1]])
        lines.append(f"| {names.get(m, m)} | " + " | ".join(f"{100 * statistics.median(bests[n]):.2f}" for n in marks)
                     + f" | {per_seed} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "tpe_bench.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
