#!/usr/bin/python3
"""A model of data-parallel training on 1-256 nodes (one rank a node), fitted to
measurements and kept apart from them (jobs/slurm/scaling.sh runs it).

Measured inputs:
  EXCHANGE  tests/bench_exchange's lines "allreduce|allgather BYTES SECONDS" between 2 nodes
  RUN1      run.h5 of 1 rank, RUN2 run.h5 of 2 nodes x 1 rank, same config and global batch G
Model (stated, not measured):
  - exchange: ring collectives, allreduce(N, n) = 2(N-1) alpha + 2(N-1)/N n beta and
    allgather(N, n) = (N-1) alpha + (N-1)/N n beta; alpha and beta fitted to EXCHANGE's
    allreduce times (at N = 2: 2 alpha + n beta; alpha from 1 KB, beta from 1 MB and up), or a
    named interconnect's nominal figures;
  - what crosses the nodes each step, as ranksweep does it: dense layers whose weight gradient
    is split (at least 64K weights and 2x the step's x and dy) send x and dy of the batch
    (two allgathers each), every other parameter is allreduced; "plain allreduce" (every
    gradient allreduced, as DDP) is drawn for comparison;
  - compute per step: c_s * G / N (work cut by samples) + c_d * G (split layers' weight
    gradients, which every node computes over the whole batch), with c_s + c_d = RUN1's compute
    per sample and c_s, c_d solved from RUN1's and RUN2's compute per step (forward + backward
    + optimizer + data time); without the split, (c_s + c_d) G / N (which leaves out that
    every node updates every parameter: optimistic for many nodes);
  - no overlap of compute and exchange (ranksweep's step does not overlap them across nodes).
Checked: the model's 2-node step with the fitted alpha/beta against RUN2's measured step.

usage: project_scaling.py EXCHANGE RUN1.h5 RUN2.h5 [-o projection.png] [--md projection.md]
"""
import argparse
import math

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Nominal latency (MPI small-message, one way) and bandwidth per link: assumptions, not measured here.
INTERCONNECTS = {"25 GbE": (25e-6, 3.1e9), "100 GbE": (10e-6, 12.5e9), "InfiniBand HDR": (2e-6, 24e9)}
NODES = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def fit_alpha_beta(path):
    rows = [line.split() for line in open(path) if line.startswith("allreduce")]
    n = np.array([float(r[1]) for r in rows])
    t = np.array([float(r[2]) for r in rows])
    # at N = 2: t = 2 alpha + n beta; alpha from the smallest message, beta from those of 1 MB and more
    # (gradients are megabytes; smaller ones run from cache and would flatter the bandwidth)
    big = n >= 1 << 20
    beta = np.polyfit(n[big], t[big], 1)[0]
    return max((t[n.argmin()] - n.min() * beta) / 2, 1e-7), beta


def run_figures(path):
    with h5py.File(path, "r") as f:
        h = f["history"]
        cfg = f.attrs["config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        batch = int(next(l.split("=")[1] for l in cfg.splitlines() if l.strip().startswith("batch_size")))
        ips, ts = float(h["images_per_second"][-1]), float(h["train_seconds"][-1])
        steps = math.ceil(ips * ts / batch)
        compute = float(h["time_forward"][-1] + h["time_backward"][-1] + h["time_optimizer"][-1] + h["time_data"][-1])
        dense, params = [], 0
        for layer in f["model"].values():
            for name, d in layer.items():
                params += d.size
                if name == "weight" and d.ndim == 2:
                    dense.append((d.shape[1], d.shape[0]))  # (IN, OUT)
    return dict(batch=batch, ips=ips, step=ts / steps, compute=compute / steps, dense=dense, params=params)


def split_layers(dense, G):
    return [(i, o) for i, o in dense if i * o >= 1 << 16 and i * o >= 2 * G * (i + o)]


def step_time(N, G, c_s, c_d, params, dense, alpha, beta, plain=False):
    if N == 1:
        return (c_s + c_d) * G
    ar = lambda nbytes: 2 * (N - 1) * alpha + 2 * (N - 1) / N * nbytes * beta
    ag = lambda nbytes: (N - 1) * alpha + (N - 1) / N * nbytes * beta
    split = [] if plain else split_layers(dense, G)
    if not split:
        return (c_s + c_d) * G / N + ar(4 * params)
    rest = params - sum(i * o for i, o in split)
    return c_s * G / N + c_d * G + ar(4 * rest) + sum(ag(4 * G * i) + ag(4 * G * o) for i, o in split)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("exchange")
    ap.add_argument("run1")
    ap.add_argument("run2")
    ap.add_argument("-o", "--out", default="projection.png")
    ap.add_argument("--md")
    a = ap.parse_args()
    alpha, beta = fit_alpha_beta(a.exchange)
    r1, r2 = run_figures(a.run1), run_figures(a.run2)
    G = r1["batch"]
    assert r2["batch"] == G, "RUN1 and RUN2 need the same global batch"
    c_s = max(2 * (r1["compute"] - r2["compute"]) / G, 0.0)
    c_d = max(r1["compute"] / G - c_s, 0.0)
    nets = {"emulated loopback (fitted)": (alpha, beta), **{k: (lat, 1 / bw) for k, (lat, bw) in INTERCONNECTS.items()}}
    pred2 = r2["compute"] + step_time(2, G, 0, 0, r1["params"], r1["dense"], alpha, beta)
    check = (f"check at 2 nodes: model step {pred2 * 1e3:.2f} ms (measured compute {r2['compute'] * 1e3:.2f} ms + "
             f"modelled exchange) vs measured {r2['step'] * 1e3:.2f} ms ({100 * (pred2 / r2['step'] - 1):+.0f}%)")
    lines = [f"alpha {alpha * 1e6:.1f} us, beta {1 / beta / 1e9:.2f} GB/s (fitted to the emulated nodes' allreduce); "
             f"compute per sample: {c_s * 1e6:.1f} us cut by nodes + {c_d * 1e6:.1f} us on every node; "
             f"{r1['params']} parameters", check, "",
             "Model, not measurement: training images/s (one rank a node); weak = batch G per node, strong = global G",
             "", "| interconnect | scaling | " + " | ".join(f"{n}" for n in NODES) + " |",
             "|---|---|" + "---|" * len(NODES)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for ax, mode in zip(axes, ("weak", "strong")):
        for k, (name, (al, be)) in enumerate(nets.items()):
            for plain in (False, True):
                xs, ys = [], []
                for N in NODES:
                    g = G * N if mode == "weak" else G
                    if g < N:
                        continue
                    xs.append(N)
                    ys.append(g / step_time(N, g, c_s, c_d, r1["params"], r1["dense"], al, be, plain))
                if not plain:
                    lines.append(f"| {name} | {mode} | " + " | ".join(f"{y:.0f}" for y in ys) +
                                 " |" * (len(NODES) - len(ys) + 1))
                ax.plot(xs, ys, "--" if plain else "-", color=f"C{k}", alpha=0.45 if plain else 1,
                        label=f"{name}" + (" (plain allreduce)" if plain else ""))
        ax.errorbar([1, 2], [r1["ips"], r2["ips"]], fmt="ko", ms=7, label="measured (emulated nodes)", zorder=5)
        ax.plot(NODES, [r1["ips"] * n for n in NODES], ":", color="grey", label="ideal")
        ax.set(xscale="log", yscale="log", xlabel="nodes (1 rank each)", ylabel="training images/s",
               title=f"{mode} scaling, model ({'batch ' + str(G) + ' per node' if mode == 'weak' else 'global batch ' + str(G)})")
        ax.set_xticks(NODES, [str(n) for n in NODES])
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Projection from measured compute and a fitted alpha-beta exchange model (lines: model; "
                 "dots: measured)", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.md:
        open(a.md, "w").write(text)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
