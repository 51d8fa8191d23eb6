#!/usr/bin/env bash
# The test suite, with everything it needs: bubblewrap, harness, and a running
# Docker engine with the harness base image (so the docker sandbox is tested too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/setup_docker.sh ]; then
  bash scripts/setup_docker.sh
  export HARNESS_REQUIRE_DOCKER=1
fi
export RAY_USAGE_STATS_ENABLED=0
python3 -m pytest -q -p no:cacheprovider --durations=25 "$@"
