#!/usr/bin/env bash
# Installs dependencies (jobs/install-deps.sh) and builds a Release build in
# ./build (override with BUILD_DIR). Extra arguments go to cmake's configure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/install-deps.sh ${RS_DEPS_FLAGS:-}
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
