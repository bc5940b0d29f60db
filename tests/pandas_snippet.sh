#!/usr/bin/env bash
# The pandas snippet of docs/sweeps.md (the python block after "run by
# tests/pandas_snippet.sh"), run on a 13-trial sweep's study.h5: the trials
# table has every trial once with str statuses and hyperparameters, the
# curves table a row per trial and epoch, and both agree with the study.
# Usage: pandas_snippet.sh path/to/ranksweep
set -u
bin=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=2
"$bin" sweep "$here/fixtures/grid-sweep.toml" --out "$tmp/sweep" > "$tmp/sweep.log" 2>&1 || { cat "$tmp/sweep.log"; exit 1; }
awk '/run by tests\/pandas_snippet.sh/ {on = 1; next} on && /```python/ {code = 1; next} code && /```/ {exit}
     code {sub(/^  /, ""); print}' "$here/../docs/sweeps.md" | sed "s|runs/sweep/study.h5|$tmp/sweep/study.h5|" > "$tmp/snippet.py"
[[ -s $tmp/snippet.py ]] || { echo "FAILED: no snippet found in docs/sweeps.md"; exit 1; }
cat >> "$tmp/snippet.py" <<'PY'
import h5py
assert len(trials) == 13 and sorted(trials.index) == list(range(13)), trials.index
assert set(trials["status"]) == {"completed"}, set(trials["status"])
assert all(isinstance(x, str) for x in trials["model.hidden"]), trials["model.hidden"].head()
assert len(curves) == 39 and sorted(set(curves["trial"])) == list(range(13)), len(curves)
with h5py.File(STUDY) as f:
    assert isinstance(f.attrs["config"], str) and isinstance(f.attrs["format"], str), "attributes read as bytes"
    assert trials["best_val_accuracy"].max() == f["best/history/val_accuracy"][()].max()
print("ok: the snippet's trials and curves agree with the study")
PY
sed -i "1i STUDY = '$tmp/sweep/study.h5'" "$tmp/snippet.py"
/usr/bin/python3 "$tmp/snippet.py"
