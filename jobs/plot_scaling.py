#!/usr/bin/python3
"""Speedup, parallel efficiency and sweep throughput from jobs/slurm/scaling.sh's HDF5 file, as a PNG.

Error bars: the spread (min..max) over the repetitions of each point, relative to the median at 1 rank.

usage: plot_scaling.py SCALING.h5 [-o scaling.png]
"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("-o", "--out", default="scaling.png")
    a = ap.parse_args()
    f = h5py.File(a.file, "r")
    fig, (ax1, ax2, ax3, ax4) = plt.subplots(1, 4, figsize=(18, 4))
    top = 1
    for mode, style in (("strong", "o-"), ("weak", "s--")):
        if mode not in f:
            continue
        g = f[mode]
        n, s = g["ranks"][()], g["speedup"][()]
        top = max(top, n.max())
        err = [s - g["speedup_min"][()], g["speedup_max"][()] - s]
        ax1.errorbar(n, s, yerr=err, fmt=style, capsize=3, label=f"{mode} scaling (training)")
        ax2.plot(n, 100 * g["efficiency"][()], style, label=f"{mode} scaling (training)")
    if "sweep" in f:
        g = f["sweep"]
        n, med = g["ranks"][()], g["median"][()]
        top = max(top, n.max())
        ax1.errorbar(n, g["speedup"][()], yerr=[g["speedup"][()] - g["speedup_min"][()],
                                                g["speedup_max"][()] - g["speedup"][()]],
                     fmt="^-.", capsize=3, label="sweep trials/hour")
        ax2.plot(n, 100 * g["efficiency"][()], "^-.", label="sweep trials/hour")
        ax3.errorbar(n, med, yerr=[med - g["min"][()], g["max"][()] - med], fmt="^-", capsize=3, color="tab:green")
        ax3.set(xlabel="single-rank groups", ylabel="trials per hour", title="Sweep throughput",
                ylim=(0, 1.15 * g["max"][()].max()))
    if "strong" in f:  # where a strong-scaling step's time goes (median shares of the training time)
        g = f["strong"]
        n = g["ranks"][()]
        bottom = 0 * n.astype(float)
        for k, color in (("compute", "tab:blue"), ("allreduce", "tab:red"), ("data", "tab:grey")):
            share = 100 * g[k][()]
            ax4.bar(n, share, bottom=bottom, color=color, width=0.5, label="exchange" if k == "allreduce" else k)
            bottom += share
        ax4.set(xlabel="ranks", ylabel="% of training time", title="Strong scaling: phases", ylim=(0, 105))
        ax4.legend(fontsize=8, loc="lower right")
    ax1.plot([1, top], [1, top], ":", color="grey", label="ideal")
    ax1.set(xlabel="ranks", ylabel="speedup vs 1 rank (median, min..max)", title="Speedup")
    ax2.axhline(100, ls=":", color="grey")
    ax2.set(xlabel="ranks", ylabel="efficiency (%)", title="Parallel efficiency", ylim=(0, 115))
    # ranks, and the nodes they ran on where several
    any_mode = next(iter(f.values()))
    where = dict(zip(any_mode["ranks"][()], any_mode["nodes"][()])) if "nodes" in any_mode else {}
    labels = [f"{r}\n({where[r]} nodes)" if where.get(r, 1) > 1 else str(r) for r in range(1, top + 1)]
    for ax in (ax1, ax2, ax3, ax4):
        ax.set_xticks(range(1, top + 1), labels)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    reps = int(max(f[m]["repetitions"][()].max() for m in f))
    fig.suptitle(f"{f.attrs.get('config', '')}: {f.attrs.get('threads_per_rank', '?')} thread(s) per rank, "
                 f"{f.attrs.get('samples', '?')} samples, {reps} repetitions, {f.attrs.get('launcher', '')}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
