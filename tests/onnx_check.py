"""Checks an exported ONNX model against `ranksweep infer`'s predictions.

Usage: onnx_check.py MODEL.onnx PRED.h5 IMAGES.idx.gz
ONNX's checker must pass; ONNX Runtime, given the raw uint8 images, must
give the same top-1 label as infer on >= 99.9% of them and every class
probability within 1e-4 of infer's (PRED.h5 written with --top-k = classes).
Exit 0 when both hold, 1 otherwise, 77 (skipped) without onnxruntime.
"""
import gzip
import json
import sys

import h5py
import numpy as np
import onnx

try:
    import onnxruntime as ort
except ImportError:
    print("SKIPPED: onnxruntime is not installed (jobs/install-deps.sh installs it from PyPI)")
    sys.exit(77)

model_path, pred_path, images_path = sys.argv[1:4]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
meta = {p.key: p.value for p in model.metadata_props}
names = json.loads(meta["class_names"])

raw = gzip.open(images_path).read()
n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
logits, probs = session.run(["logits", "probabilities"], {"image": x})

with h5py.File(pred_path, "r") as f:
    order = np.argsort(f["index"][()])
    labels = f["labels"][()][order]
    infer_probs = np.zeros_like(probs)
    np.put_along_axis(infer_probs, labels, f["probabilities"][()][order], axis=1)
    infer_names = [s.decode() if isinstance(s, bytes) else str(s) for s in f.attrs["class_names"]]

same = float((probs.argmax(1) == labels[:, 0]).mean())
diff = float(np.abs(probs - infer_probs).max())
print(f"{model_path}: {n} images, top-1 equal on {100 * same:.3f}%, "
      f"largest probability difference {diff:.2e}, {len(model.graph.node)} nodes")
ok = same >= 0.999 and diff <= 1e-4 and names == infer_names and len(names) == probs.shape[1]
sys.exit(0 if ok else 1)
