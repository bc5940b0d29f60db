#!/usr/bin/env bash
# ONNX export (`ranksweep export --format onnx`): four models trained briefly
# on Fashion-MNIST (an MLP with GELU, the CNN, the CNN with batch norm, and a
# custom model with every other layer type: strided and padded convolution,
# padded pooling, tanh, sigmoid, batch norm after a dense layer, flatten,
# dropout) and a sweep's best trial are exported, checked by ONNX's checker
# and run by ONNX Runtime on the 10k test images (tests/onnx_check.py: top-1
# equal to `ranksweep infer` on >= 99.9%, probabilities within 1e-4). Bad
# input: a damaged run file, an unknown layer type, --format onnx without
# --out: exit 2 with one line, and no output file.
# Usage: onnx_export.sh path/to/ranksweep
set -u
bin=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data=/usr/share/datasets/fashion-mnist
images=$data/t10k-images-idx3-ubyte.gz
skipped=0
source "$here/checks.sh"
bad() {  # bad NAME PATTERN COMMAND...: exit 2, one line on stderr matching PATTERN, no $tmp/bad.onnx
  "${@:3}" > "$tmp/out" 2> "$tmp/err"
  local rc=$? lines
  lines=$(wc -l < "$tmp/err")
  if [[ $rc -eq 2 && $lines -eq 1 ]] && grep -q -- "$2" "$tmp/err" && [[ ! -e $tmp/bad.onnx ]]; then
    echo "ok: $1: $(cat "$tmp/err")"
  else
    fail=$((fail + 1)); echo "FAILED: $1 (exit $rc, $lines lines):"; cat "$tmp/err"
  fi
}
export_and_run() {  # export_and_run NAME MODEL_FILE: export, infer on the test set, compare
  "$bin" export "$2" --format onnx --out "$tmp/$1.onnx" &&
    "$bin" infer --model "$2" --data "$images" --top-k 10 --out "$tmp/$1-pred.h5" > /dev/null &&
    /usr/bin/python3 "$here/onnx_check.py" "$tmp/$1.onnx" "$tmp/$1-pred.h5" "$images"
  local rc=$?
  [[ $rc -eq 77 ]] && skipped=1 && return 0
  return $rc
}
train() {  # train NAME CONFIG [--set ...]: one epoch on 5000 training images
  "$bin" train "$2" --set train.epochs=1 --set data.validation=55000 "${@:3}" --out "$tmp/$1" > "$tmp/$1.log" 2>&1 ||
    { cat "$tmp/$1.log"; return 1; }
}

cat > "$tmp/custom.toml" <<'TOML'
[data]
format = "idx"
[model]
layers = [ { type = "conv2d", out = 8, kernel = 3, stride = 2, padding = 1 }, { type = "tanh" },
           { type = "batchnorm" }, { type = "maxpool", kernel = 3, stride = 2, padding = 1 },
           { type = "flatten" }, { type = "dropout", p = 0.2 }, { type = "dense", out = 32 },
           { type = "batchnorm" }, { type = "sigmoid" }, { type = "dense", out = 10, name = "head" } ]
[train]
optimizer = "adam"
lr = 0.003
TOML
inputs=$here/../inputs
check "train the MLP (GELU)" train mlp "$inputs/fmnist-mlp.toml" --set model.activation=gelu --set model.dropout=0.1
check "train the CNN" train cnn "$inputs/fmnist-cnn.toml"
check "train the CNN with batch norm" train cnnbn "$inputs/fmnist-cnn.toml" --set model.batch_norm=true
check "train the custom model" train custom "$tmp/custom.toml"
for m in mlp cnn cnnbn custom; do
  check "$m: ONNX Runtime agrees with infer" export_and_run "$m" "$tmp/$m/run.h5"
done

# --input float32: the graph takes values as they are (a float dataset's); pixels / 255 give the uint8 graph's output.
float_input() {
  "$bin" export "$tmp/cnnbn/run.h5" --format onnx --input float32 --out "$tmp/float.onnx" || return 1
  /usr/bin/python3 - "$tmp/float.onnx" "$tmp/cnnbn.onnx" "$images" <<'PY'
import gzip, sys
import numpy as np
try:
    import onnxruntime as ort
except ImportError:
    sys.exit(0)  # reported once, by the comparisons above
x = np.frombuffer(gzip.open(sys.argv[3]).read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:500]
run = lambda m, v: ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(["probabilities"], {"image": v})[0]
d = float(np.abs(run(sys.argv[1], x.astype(np.float32) / 255) - run(sys.argv[2], x)).max())
print(f"float32 input vs uint8 input: largest probability difference {d:.1e}")
sys.exit(0 if d < 1e-5 else 1)
PY
}
check "--input float32" float_input

# A study exports its best trial.
cp "$here/fixtures/grid-sweep.toml" "$tmp/sweep.toml"
sweep() { "$bin" sweep "$tmp/sweep.toml" --out "$tmp/sweep" > "$tmp/sweep.log" 2>&1 || { cat "$tmp/sweep.log"; return 1; }; }
check "a small sweep" sweep
check "the study's best trial exports" "$bin" export "$tmp/sweep/study.h5" --format onnx --out "$tmp/study.onnx"
check "the study's model passes ONNX's checker" /usr/bin/python3 -c \
  "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$tmp/study.onnx"

# Bad input.
cp "$tmp/mlp/run.h5" "$tmp/damaged.h5"
printf '\x55' | dd of="$tmp/damaged.h5" bs=1 seek=40000 conv=notrunc status=none
bad "a damaged run file" "damaged.h5" "$bin" export "$tmp/damaged.h5" --format onnx --out "$tmp/bad.onnx"
/usr/bin/python3 - "$tmp/custom/run.h5" "$tmp/unknown.h5" <<'PY'
# The custom run without its checksum block (files of earlier versions are
# read without one), its config naming a layer type the engine lacks.
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "w") as b:
    for k in a:
        a.copy(k, b)
    for k, v in a.attrs.items():
        b.attrs[k] = v
    text = a.attrs["config"]
    text = text.decode() if isinstance(text, bytes) else text
    b.attrs["config"] = text.replace("'sigmoid'", "'swish'").replace('"sigmoid"', '"swish"')
PY
bad "an unknown layer type" "swish" "$bin" export "$tmp/unknown.h5" --format onnx --out "$tmp/bad.onnx"
bad "onnx without --out" "needs --out" "$bin" export "$tmp/mlp/run.h5" --format onnx
bad "--input with csv" "only for --format onnx" "$bin" export "$tmp/mlp/run.h5" --input uint8

[[ $fail -gt 0 ]] && { echo "$fail check(s) failed"; exit 1; }
[[ $skipped -eq 1 ]] && { echo "SKIPPED: the ONNX Runtime comparisons (onnxruntime is not installed)"; exit 77; }
exit 0
