#!/usr/bin/env bash
# The main job on the embedded default: a local Ray, the built-in competitions, the
# bubblewrap sandbox. Installs what is missing first. Extra arguments go to `harness run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_USAGE_STATS_ENABLED=0
if [ $# -eq 0 ]; then set -- --split lite --agent baseline; fi
exec harness run "$@"
