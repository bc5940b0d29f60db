#!/usr/bin/env bash
# The sweep's coordinator alone, at cluster scale: simulated groups that
# finish every job at once (tests/bench_coordinator.cpp), random search with
# and without ASHA. Results per second over whole sweeps of 10^3 to 10^5
# trials with 16, 256 and 1024 groups, the cost per result at the end of a
# sweep against its start, the study's size, and the time to resume it and
# to read it (`report`, `export`). Prints the date and CPU model first.
#
# usage: jobs/bench-coordinator.sh [TRIALS=1000,10000,100000] [GROUPS=16,256,1024]
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/build.sh >/dev/null
echo "$(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p')"
for mode in "" --asha; do
  build/tests/bench_coordinator --trials "${1:-1000,10000,100000}" --groups "${2:-16,256,1024}" $mode 2>&1 >/dev/null
done
