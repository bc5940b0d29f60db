#!/usr/bin/python3
"""Speedup and parallel efficiency from jobs/scaling.sh's HDF5 file, as a PNG.

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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    top = 1
    for mode, style in (("strong", "o-"), ("weak", "s--")):
        if mode not in f:
            continue
        g = f[mode]
        n = g["ranks"][()]
        top = max(top, n.max())
        ax1.plot(n, g["speedup"][()], style, label=f"{mode} scaling")
        ax2.plot(n, 100 * g["efficiency"][()], style, label=f"{mode} scaling")
    ax1.plot([1, top], [1, top], ":", color="grey", label="ideal")
    ax1.set(xlabel="ranks", ylabel="speedup (training images/s vs 1 rank)", title="Speedup")
    ax2.axhline(100, ls=":", color="grey")
    ax2.set(xlabel="ranks", ylabel="efficiency (%)", title="Parallel efficiency", ylim=(0, 110))
    for ax in (ax1, ax2):
        ax.set_xticks(range(1, top + 1))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{f.attrs.get('config', '')}: {f.attrs.get('threads_per_rank', '?')} thread(s) per rank, "
                 f"{f.attrs.get('train_samples', '?')} training samples")
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
