#!/usr/bin/python3
"""A ranksweep study as ranksweep reads it: DIR/study.h5 with the results that
DIR/study.journal holds beyond it (a running sweep, or one killed before its
last rewrite of study.h5). h5py + the standard library.

    import ranksweep_study
    s = ranksweep_study.load("runs/sweep/study.h5")
    s.attrs["config"], s["trials"]["best_val_accuracy"], s["curves"]["3"]["val_accuracy"]

s["trials"]: column -> numpy array (one entry per trial, in order of first
result; strings as str); s["curves"]: trial id as text -> metric -> numpy
array (in the file: one table, /curves/trial and /curves/<metric>, a row per
trial and epoch); s.attrs: the file's attributes (strings as str).

As a command: ranksweep_study.py STUDY.h5 prints the number of trials (0 when
there is no study yet).
"""
import json
import os
import sys
import tomllib
import zlib

import h5py
import numpy as np


class Study(dict):
    attrs: dict


def _text(x):
    return x.decode() if isinstance(x, bytes) else x


def _number(x):
    return float(x) if isinstance(x, str) else x  # "nan", "inf", "-inf" are written as strings


def _records(path):
    """The journal's undamaged records, in order (stops at a torn or damaged line)."""
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n") or len(raw) < 10 or raw[8:9] != b" ":
                return
            text = raw[9:-1]
            try:
                if int(raw[:8], 16) != zlib.crc32(text):
                    return
                yield json.loads(text)
            except ValueError:
                return


def _toml(text):
    return tomllib.loads("v = " + text)["v"]


def _config_value(config, key):
    node = tomllib.loads(config)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load(path):
    s = Study()
    s.attrs = {}
    rows, curves = [], {}  # rows: dicts of column -> value
    if os.path.exists(path):
        with h5py.File(path, "r") as f:
            s.attrs = {k: _text(v) for k, v in f.attrs.items()}
            t = f["trials"]
            cols = {k: [_text(x) for x in t[k][()]] for k in t}
            rows = [{k: cols[k][i] for k in cols} for i in range(len(cols.get("id", [])))]
            c = f.get("curves")
            if c is not None and "metrics" in c.attrs:  # one table, a row per (trial, epoch)
                trial = c["trial"][()]
                cols = {_text(m): c[_text(m)][()] for m in c.attrs["metrics"]}
                starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])  # each trial's rows are together
                for a, b in zip(starts, np.r_[starts[1:], len(trial)]):
                    curves[str(trial[a])] = {m: v[a:b] for m, v in cols.items()}
            elif c is not None:  # written by an earlier version: a group per trial
                for i, g in c.items():
                    curves[i] = {m: g[m][()] for m in g}
    journal = os.path.join(os.path.dirname(path), "study.journal")
    keys = []
    if os.path.basename(path) == "study.h5" and os.path.exists(journal):
        records = _records(journal)
        header = next(records, None)
        if header is not None:
            s.attrs.setdefault("config", header["config"])
            s.attrs.setdefault("hyperparameters", ",".join(header["keys"]))
            keys = [k for k in s.attrs["hyperparameters"].split(",") if k]
            seen = int(s.attrs.get("journal_seq", 0))
            index = {r["id"]: i for i, r in enumerate(rows)}
            for rec in records:
                if rec["seq"] <= seen:
                    continue
                r = dict(rec["row"])
                params = dict(line.split("=", 1) for line in r.pop("params").splitlines())
                for k in keys:  # a key the trial does not set holds the config's value, as in study.h5
                    v = _toml(params[k]) if k in params else _config_value(s.attrs["config"], k)
                    r[k] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else (
                        params.get(k, "default"))
                for k in ("best_val_accuracy", "test_accuracy", "wall_seconds", "start_seconds", "end_seconds"):
                    r[k] = _number(r[k])
                if rec["curves"]:
                    curves[str(r["id"])] = {m: np.array([_number(x) for x in v]) for m, v in rec["curves"].items()}
                if r["id"] in index:
                    rows[index[r["id"]]] = r
                else:
                    index[r["id"]] = len(rows)
                    rows.append(r)
                s.attrs["sweep_seconds"] = rec["sweep_seconds"]
                s.attrs["journal_seq"] = rec["seq"]
    elif not os.path.exists(path):
        raise FileNotFoundError(path)
    for k in keys if rows and os.path.exists(journal) else []:  # a column with any text is text throughout
        if any(isinstance(r[k], str) for r in rows):
            for r in rows:
                r[k] = r[k] if isinstance(r[k], str) else repr(r[k])
    columns = rows[0].keys() if rows else []
    s["trials"] = {k: np.array([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None)
                   for k in columns}
    s["curves"] = curves
    return s


if __name__ == "__main__":
    p = sys.argv[1]
    j = os.path.join(os.path.dirname(p), "study.journal")
    print(len(load(p)["trials"].get("id", [])) if os.path.exists(p) or os.path.exists(j) else 0)
