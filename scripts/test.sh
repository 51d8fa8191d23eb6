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
# two workers, a test file each (module fixtures stay shared), the longest files first (LONGEST_FIRST in
# tests/conftest.py; --no-loadscope-reorder keeps that order): most of the suite waits on processes
# (Ray, sandboxes, servers), so two files at a time on 2 cores take about 60% of the serial time;
# HARNESS_TEST_WORKERS=0 runs it serially
workers="${HARNESS_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  python3 -m pytest -q -p no:cacheprovider --durations=25 "$@"
else
  python3 -m pytest -q -p no:cacheprovider --durations=25 -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
fi
