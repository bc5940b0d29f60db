#!/usr/bin/python3
"""PNG figures of a ranksweep study (h5py + matplotlib, no ranksweep needed):
  heatmap.png   test error over two hyperparameters (default: the learning rate
                and the layer size, as in the Spark study's figure)
  curves.png    validation accuracy per epoch of every trial
  timeline.png  which group ran which trial when (utilisation)

usage: plot_sweep.py STUDY.h5 [-o DIR] [--x KEY] [--y KEY]
"""
import argparse
import os

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np


def column(t, key):
    v = t[key][()]
    return [x.decode() if isinstance(x, bytes) else x for x in v]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("-o", "--out", default=".")
    ap.add_argument("--x", help="hyperparameter on the x axis (default: train.lr if searched)")
    ap.add_argument("--y", help="hyperparameter on the y axis (default: another searched key)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    f = h5py.File(a.study, "r")
    t = f["trials"]
    keys = [k for k in f.attrs["hyperparameters"].split(",") if k]
    status = column(t, "status")
    ids = t["id"][()]
    ok = np.array([s in ("completed", "pruned") for s in status])
    test = t["test_accuracy"][()]

    # heatmap of test error over two hyperparameters (the best trial per cell)
    x = a.x or ("train.lr" if "train.lr" in keys else keys[0])
    others = [k for k in keys if k != x]
    y = a.y or (others[0] if others else None)
    if y:
        xs, ys = column(t, x), column(t, y)
        searched = ok & (ids != 0)  # the default trial may sit off the grid
        xv = sorted(set(v for v, good in zip(xs, searched) if good), key=lambda v: (isinstance(v, str), v))
        yv = sorted(set(v for v, good in zip(ys, searched) if good), key=lambda v: (isinstance(v, str), v))
        epochs = t["epochs"][()]
        err = np.full((len(yv), len(xv)), np.nan)
        note = {}
        for i in range(len(ids)):
            on_grid = ok[i] and xs[i] in xv and ys[i] in yv  # the default trial too, when it is a grid point
            if searched[i] or (ids[i] == 0 and on_grid):
                r, c = yv.index(ys[i]), xv.index(xs[i])
                e = 100 * (1 - test[i])
                if np.isnan(err[r, c]) or e < err[r, c]:
                    err[r, c] = e
                    note[r, c] = ("\ndefault" if ids[i] == 0 else "") + \
                                 (f"\npruned, {epochs[i]} ep" if status[i] == "pruned" else "")
        fig, ax = plt.subplots(figsize=(1.4 * len(xv) + 3, 0.8 * len(yv) + 2))
        im = ax.imshow(err, cmap="viridis_r", aspect="auto")
        for r in range(len(yv)):
            for c in range(len(xv)):
                if not np.isnan(err[r, c]):
                    ax.text(c, r, f"{err[r, c]:.2f}{note[r, c]}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(xv)), [str(v) for v in xv])
        ax.set_yticks(range(len(yv)), [str(v) for v in yv])
        ax.set(xlabel=x, ylabel=y, title="test error (%) at the best validation epoch (diverged/failed cells empty)")
        fig.colorbar(im, ax=ax, label="test error (%)")
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "heatmap.png"), dpi=120)
        plt.close(fig)

    # learning curves
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, s in zip(ids, status):
        c = f["curves"].get(str(i))
        if c is None or "val_accuracy" not in c:
            continue
        v = 100 * c["val_accuracy"][()]
        ax.plot(np.arange(1, len(v) + 1), v, "-o" if s == "completed" else ":x", ms=3,
                label=f"#{i} {s}" if len(ids) <= 12 else None, lw=2 if i == 0 else 1)
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="learning curves (pruned trials dotted)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if len(ids) <= 12:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "curves.png"), dpi=120)
    plt.close(fig)

    # timeline: one row per group
    fig, ax = plt.subplots(figsize=(10, 1 + 0.5 * (t["group"][()].max() + 1)))
    colors = {"completed": "tab:green", "pruned": "tab:orange", "diverged": "tab:red", "failed": "black"}
    for i, g, s0, s1, s in zip(ids, t["group"][()], t["start_seconds"][()], t["end_seconds"][()], status):
        ax.barh(g, s1 - s0, left=s0, color=colors.get(s, "grey"), edgecolor="white")
        ax.text(s0 + (s1 - s0) / 2, g, str(i), ha="center", va="center", fontsize=7, color="white")
    ax.set(xlabel="seconds since the sweep (re)started", ylabel="group", title="which group ran which trial")
    ax.set_yticks(range(int(t["group"][()].max()) + 1))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, colors.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "timeline.png"), dpi=120)
    plt.close(fig)
    print("wrote", ", ".join(os.path.join(a.out, n) for n in ("heatmap.png", "curves.png", "timeline.png")))


if __name__ == "__main__":
    main()
