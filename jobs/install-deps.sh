#!/usr/bin/env bash
# Installs ranksweep's build, test and benchmark dependencies from Debian's
# archive. Skips what is already installed; uses sudo when not root.
# Usage: jobs/install-deps.sh [--bench]   (--bench adds python3-torch and python3-optuna)
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libopenblas-openmp-dev libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev
      zlib1g-dev liblzma-dev libstb-dev catch2 dataset-fashion-mnist
      python3 python3-h5py python3-matplotlib python3-numpy
      time util-linux  # /usr/bin/time (peak memory in tests), flock
      clang libclang-rt-dev libomp-dev python3-pil  # jobs/fuzz.sh: libFuzzer, its OpenMP, seed images
      slurm-wlm munge)  # the slurm test starts a private slurmctld/slurmd
[[ "${1:-}" == "--bench" ]] && pkgs+=(python3-torch python3-optuna)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
