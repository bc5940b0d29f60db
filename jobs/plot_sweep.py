#!/usr/bin/python3
"""PNG figures of a ranksweep study (h5py + matplotlib, no ranksweep needed; a
running or killed sweep's journal is read too, by ranksweep_study.py):
  heatmap.png   test error over two hyperparameters (default: the learning rate
                and the other key that explains most of the validation accuracy,
                eta^2 as in `ranksweep report`)
  curves.png    validation accuracy per epoch of every trial
  timeline.png  which group ran which trial when (utilisation)
  history.png   optimisation history: each trial's best validation accuracy and
                the best so far, against the trial number and the sweep's clock

usage: plot_sweep.py STUDY.h5 [-o DIR] [--x KEY] [--y KEY]
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import ranksweep_study


def column(t, key):
    v = t[key][()]
    return [x.decode() if isinstance(x, bytes) else x for x in v]


def cells(values, searched, n_bins=5):
    """The heatmap's cells of one key: its distinct values, or for a continuous
    key with many values, bins (log-spaced when every value is positive).
    Returns (labels, index of each value's cell or None)."""
    nums = [v for v, good in zip(values, searched) if good and not isinstance(v, str)]
    if len(set(nums)) <= 8:
        labels = sorted(set(v for v, good in zip(values, searched) if good), key=lambda v: (isinstance(v, str), v))
        return [str(v) for v in labels], [labels.index(v) if v in labels else None for v in values]
    lo, hi = min(nums), max(nums)
    log = lo > 0
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    fmt = (lambda e: f"{e:.2g}") if log else (lambda e: f"{e:.3g}")
    labels = [f"{fmt(edges[k])}-{fmt(edges[k + 1])}" for k in range(n_bins)]
    index = []
    for v in values:
        if isinstance(v, str) or not lo <= v <= hi:
            index.append(None)
        else:
            index.append(min(int(np.searchsorted(edges, v, side="right")) - 1, n_bins - 1))
    return labels, index


def importance(f, t, key, ok):
    """Share of the variance of validation accuracy after the first epoch that
    the key's values (binned as in the heatmap) explain: eta^2, as `ranksweep
    report` computes it."""
    ids = t["id"][()]
    vals = column(t, key)
    first = [f["curves"][str(i)]["val_accuracy"][0] if str(i) in f["curves"] else np.nan for i in ids]
    good = [g and np.isfinite(v) for g, v in zip(ok, first)]
    _, cell = cells(vals, good)
    groups = {}
    for c, v, g in zip(cell, first, good):
        if g and c is not None:
            groups.setdefault(c, []).append(v)
    allv = [v for g in groups.values() for v in g]
    if len(allv) < 2 or np.var(allv) == 0:
        return 0.0
    m = np.mean(allv)
    return sum(len(g) * (np.mean(g) - m) ** 2 for g in groups.values()) / (len(allv) * np.var(allv))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("-o", "--out", default=".")
    ap.add_argument("--x", help="hyperparameter on the x axis (default: train.lr if searched)")
    ap.add_argument("--y", help="hyperparameter on the y axis (default: another searched key)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    f = ranksweep_study.load(a.study)
    t = f["trials"]
    hp = f.attrs["hyperparameters"]
    keys = [k for k in (hp.decode() if isinstance(hp, bytes) else hp).split(",") if k]
    status = column(t, "status")
    ids = t["id"][()]
    ok = np.array([s in ("completed", "pruned") for s in status])
    test = t["test_accuracy"][()]

    # heatmap of test error over two hyperparameters (the best trial per cell)
    x = a.x or ("train.lr" if "train.lr" in keys else keys[0])
    others = [k for k in keys if k != x]
    y = a.y or (max(others, key=lambda k: importance(f, t, k, ok)) if others else None)
    if y:
        xs, ys = column(t, x), column(t, y)
        searched = ok & (ids != 0)  # the default trial may sit off the grid
        xv, xi = cells(xs, searched)
        yv, yi = cells(ys, searched)
        epochs = t["epochs"][()]
        err = np.full((len(yv), len(xv)), np.nan)
        note = {}
        for i in range(len(ids)):
            on_grid = ok[i] and xi[i] is not None and yi[i] is not None  # the default too, when in a cell
            if (searched[i] and on_grid) or (ids[i] == 0 and on_grid):
                r, c = yi[i], xi[i]
                e = 100 * (1 - test[i])
                if np.isnan(err[r, c]) or e < err[r, c]:
                    err[r, c] = e
                    note[r, c] = ("\ndefault" if ids[i] == 0 else f"\n#{ids[i]}") + \
                                 (f"\npruned, {epochs[i]} ep" if status[i] == "pruned" else "")
        fig, ax = plt.subplots(figsize=(1.4 * len(xv) + 3, 0.8 * len(yv) + 2))
        im = ax.imshow(err, cmap="viridis_r", aspect="auto")
        for r in range(len(yv)):
            for c in range(len(xv)):
                if not np.isnan(err[r, c]):
                    light = err[r, c] < np.nanmin(err) + 0.5 * (np.nanmax(err) - np.nanmin(err))  # yellow end of viridis_r
                    ax.text(c, r, f"{err[r, c]:.2f}{note[r, c]}", ha="center", va="center",
                            color="k" if light else "w", fontsize=8)
        ax.set_xticks(range(len(xv)), [str(v) for v in xv])
        ax.set_yticks(range(len(yv)), [str(v) for v in yv])
        ax.set(xlabel=x, ylabel=y, title="test error (%) at the best validation epoch, best trial per cell\n"
                                         "(diverged/failed trials and empty cells blank)")
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
    # optimisation history: against the trial number and against the sweep's clock
    val = 100 * t["best_val_accuracy"][()]
    end = t["end_seconds"][()]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, xval, xlabel in ((axes[0], ids, "trial"), (axes[1], end / 60, "minutes of sweep time (end of the trial's last job)")):
        order = np.argsort(xval, kind="stable")
        good = [k for k in order if ok[k]]
        best = np.maximum.accumulate(val[good]) if good else []
        ax.step(xval[good], best, where="post", color="tab:blue", label="best so far")
        for s_, c in (("completed", "tab:green"), ("pruned", "tab:orange")):
            m = [k for k in good if status[k] == s_]
            ax.scatter(xval[m], val[m], s=18, color=c, label=s_, zorder=3)
        d = [k for k in good if ids[k] == 0]
        if d:
            ax.axhline(val[d[0]], color="grey", ls="--", lw=1, label="default (trial 0)")
        ax.set(xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0].set(ylabel="best validation accuracy (%)", title="optimisation history (pruned: at their last rung)")
    if len(good) > 3:  # zoom on the useful range: the worst results of bad trials flatten the curve
        lo = np.percentile(val[good], 25)
        axes[0].set_ylim(min(lo, val[d[0]] if d else lo) - 0.5, val[good].max() + 0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "history.png"), dpi=120)
    plt.close(fig)
    print("wrote", ", ".join(os.path.join(a.out, n) for n in ("heatmap.png", "curves.png", "timeline.png", "history.png")))


if __name__ == "__main__":
    main()
