#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: system packages the local
# sandbox needs (bubblewrap, prlimit) and harness itself with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)  # a granted network, isolated from the host's loopback
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)  # root drops the agent to an unprivileged uid
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
# the dashboard's browser tests (tests/test_ui.py): headless Chromium and its WebDriver
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! python3 -c "import harness, ray, sklearn, pytest, moto.server, xdist" >/dev/null 2>&1 || [ pyproject.toml -nt .setup-stamp ]; then
  echo "setup: pip install -e .[test]"
  python3 -m pip install -q --disable-pip-version-check -e ".[test]"
  touch .setup-stamp
fi
export RAY_USAGE_STATS_ENABLED=0
# AIDE's own environment beside the interpreter (aideml pins old numpy/pandas: --no-deps, never harness's env)
sh harness/agents/aide/install.sh
