#!/usr/bin/env bash
# Install, build and run the whole test suite (unit, MPI with 1-3 ranks,
# real-data training, command-line errors). MPI as root needs the two
# OMPI_ALLOW_RUN_AS_ROOT variables; they are set here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${BUILD_DIR:-build}"
ctest --output-on-failure "$@"
