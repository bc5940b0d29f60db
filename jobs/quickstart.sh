#!/usr/bin/env bash
# Fresh machine to a trained model: install, build, train the MLP on
# Fashion-MNIST (the default data). Extra arguments go to `ranksweep train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/build.sh
exec build/ranksweep train inputs/fmnist-mlp.toml "$@"
