#!/usr/bin/python3
"""Plots of a `ranksweep infer` output file (h5py + matplotlib).

usage: plot_predictions.py PRED.h5 [-o DIR]
writes DIR/confusion.png: with /true_labels, the row-normalised confusion
       matrix of the top-1 prediction (rows: true class); without, the
       number of samples predicted per class
       DIR/confidence.png: histogram of the top-1 probability (correct and
       wrong predictions apart when labels are known)
"""
import argparse, os

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pred")
    ap.add_argument("-o", "--out", default=".")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    f = h5py.File(a.pred, "r")
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # fixed-length strings come as bytes
    if text(f.attrs.get("format", "")) != "ranksweep-predictions":
        raise SystemExit(f"{a.pred}: not a ranksweep predictions file")
    names = [text(x) for x in f.attrs["class_names"]]
    K = len(names)
    top1 = f["labels"][:, 0]
    p1 = f["probabilities"][:, 0]
    truth = f["true_labels"][()] if "true_labels" in f else None
    path, _, root = text(f.attrs["model"]).partition(":")  # a study's best trial: study.h5:/best
    title = f"{os.path.basename(path)}{':' + root if root else ''} on {os.path.basename(text(f.attrs['input']))}"

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    if truth is not None:
        cm = np.zeros((K, K))
        np.add.at(cm, (truth, top1), 1)
        cm /= np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
        for i in range(K):
            for j in range(K):
                if cm[i, j] >= 0.01:
                    ax.text(j, i, f"{100 * cm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if cm[i, j] > 0.5 else "black")
        ax.set_xticks(range(K), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(K), names, fontsize=8)
        ax.set_xlabel("predicted (top-1)")
        ax.set_ylabel("true class")
        fig.colorbar(im, ax=ax, label="fraction of the true class")
        ax.set_title(f"{title}\ntop-1 accuracy {100 * f.attrs['top1_accuracy']:.2f}%, "
                     f"top-{f.attrs['top_k']} {100 * f.attrs['topk_accuracy']:.2f}% ({len(top1)} samples)", fontsize=9)
    else:
        ax.bar(range(K), np.bincount(top1, minlength=K))
        ax.set_xticks(range(K), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("samples")
        ax.set_title(f"{title}: predicted classes ({len(top1)} samples)", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "confusion.png"), dpi=120)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    if truth is not None:
        ok = top1 == truth
        ax.hist(p1[ok], bins, alpha=0.7, label=f"correct ({ok.sum()})")
        ax.hist(p1[~ok], bins, alpha=0.7, label=f"wrong ({(~ok).sum()})")
        ax.legend()
    else:
        ax.hist(p1, bins)
    ax.set_yscale("log")
    ax.set_xlabel("top-1 probability")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "confidence.png"), dpi=120)
    print(f"wrote {a.out}/confusion.png, {a.out}/confidence.png")


if __name__ == "__main__":
    main()
