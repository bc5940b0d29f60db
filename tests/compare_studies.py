#!/usr/bin/python3
"""compare_studies.py A.h5 B.h5: the same trials, each once, with the same results (status, best validation
and test accuracy, epochs); a line and status 1 otherwise (tests/sweep_kill.sh, tests/cluster_kill.sh)."""
import sys

import h5py


def rows(t):
    ids = list(t["id"][()])
    assert len(ids) == len(set(ids)), f"a trial appears twice: {sorted(ids)}"
    return {i: (t["status"][k], t["best_val_accuracy"][k], t["test_accuracy"][k], t["epochs"][k]) for k, i in enumerate(ids)}


ra, rb = (rows(h5py.File(p, "r")["trials"]) for p in sys.argv[1:3])
assert ra.keys() == rb.keys(), f"trials differ: {sorted(ra)} vs {sorted(rb)}"
bad = [i for i in ra if ra[i] != rb[i]]
assert not bad, f"results differ for trials {bad}: {[(ra[i], rb[i]) for i in bad]}"
