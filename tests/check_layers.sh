#!/usr/bin/env bash
# The source tree's rooms, lowest first (docs/design.md): a file may include
# its own room and the rooms below it, never one above. Lists every include
# that runs back up and fails if there is one.
# Usage: check_layers.sh [SOURCE_DIR]
set -u
cd "${1:-$(dirname "$0")/..}"
rooms=(kernels config io backend data mpi nn train sweep app)
declare -A rank
for i in "${!rooms[@]}"; do rank[${rooms[$i]}]=$i; done
bad=0 files=0
while IFS= read -r f; do
  files=$((files + 1))
  if [[ $f == kernels/* ]]; then room=kernels; else room=${f#src/}; room=${room%%/*}; fi
  [[ -n ${rank[$room]:-} ]] || continue  # src/error.h, src/build_info.h.in: below every room
  while IFS= read -r inc; do
    to=${inc%%/*}
    [[ -n ${rank[$to]:-} ]] || continue
    if ((rank[$to] > rank[$room])); then
      echo "$f includes \"$inc\": $to is above $room"
      bad=$((bad + 1))
    fi
  done < <(sed -n 's/^#include "\([a-z_]*\/[^"]*\)".*/\1/p' "$f")
done < <(git ls-files 'kernels/*' 'src/*' 2>/dev/null || find kernels src -type f)
echo "layers: $files files, rooms ${rooms[*]} (lowest first); $bad include(s) running back up"
((bad == 0))
