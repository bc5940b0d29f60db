#!/usr/bin/env bash
# Installs ranksweep's build, test and benchmark dependencies from Debian's
# archive. Skips what is already installed; uses sudo when not root.
# Usage: jobs/install-deps.sh [--bench]   (--bench adds python3-torch and python3-optuna)
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libopenblas-openmp-dev libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev
      zlib1g-dev liblzma-dev libstb-dev libpng-dev libturbojpeg0-dev catch2 dataset-fashion-mnist
      libonnx-dev libprotobuf-dev python3-onnx python3-pip  # ONNX export; its check (onnxruntime from PyPI, below)
      python3-pandas  # the study snippet of docs/file-formats.md, run by tests/pandas_snippet.sh
      python3 python3-h5py python3-matplotlib python3-numpy
      time util-linux  # /usr/bin/time (peak memory in tests), flock
      clang libclang-rt-dev libomp-dev python3-pil  # jobs/fuzz.sh: libFuzzer, its OpenMP, seed images
      slurm-wlm munge)  # the slurm test starts a private slurmctld/slurmd
[[ "${1:-}" == "--bench" ]] && pkgs+=(python3-torch python3-optuna)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# ONNX Runtime checks exported models (tests/onnx_export.sh); Debian 12 has no
# package of it. Pinned; --no-deps: an InferenceSession needs only numpy
# (Debian's), its other requirements serve its command-line tools.
ort=onnxruntime==1.20.1
if ! /usr/bin/python3 -c "import onnxruntime" 2>/dev/null; then
  $sudo /usr/bin/python3 -m pip install -q --no-deps --break-system-packages --root-user-action=ignore "$ort" >&2 ||
    echo "install-deps: $ort could not be installed from PyPI; the ONNX Runtime check of exported models will be skipped" >&2
fi
