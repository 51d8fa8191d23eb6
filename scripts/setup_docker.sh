#!/usr/bin/env bash
# Idempotent set-up of the docker sandbox on a Debian/Ubuntu machine with no Docker
# registry: installs docker.io and debootstrap when missing, starts dockerd in the
# background when no engine answers, waits for it, and builds the harness base image
# when it is absent (about 3-5 minutes the first time, then cached by the engine).
# Run after scripts/setup.sh (harness must be importable). Says what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_docker: installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup_docker: docker.io and debootstrap are installed"
fi

engine_up() { python3 -c "from harness.sandbox.docker.images import docker_client; docker_client()" >/dev/null 2>&1; }

if engine_up; then
  echo "setup_docker: a Docker engine answers"
else
  log="${TMPDIR:-/tmp}/harness-dockerd.log"
  echo "setup_docker: starting dockerd in the background (log: $log)"
  # setsid: the engine outlives this script and the test run that called it
  $SUDO setsid nohup dockerd >"$log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    engine_up && break
    sleep 0.5
  done
  if ! engine_up; then
    echo "setup_docker: dockerd did not answer within 30 s; its log ends with:" >&2
    tail -20 "$log" >&2 || true
    exit 1
  fi
  echo "setup_docker: dockerd is up"
fi

# builds only what is absent: the debootstrap root filesystem, then the base image
start=$(date +%s)
python3 -m harness.cli images build --base-only
echo "setup_docker: base image ready ($(( $(date +%s) - start )) s)"
