# The harness base image: Python 3.11 with the packages agents need, a non-root
# user, the mlebench paths, and the source datasets of built-in competitions removed.
# `harness images build` builds it; the build context it sends holds this file,
# hide_datasets.py, requirements.txt (pinned to the harness's own environment)
# and wheels/ (downloaded on the host, so the build needs no network).
#
#   registry:    BASE=python:3.11-slim (for machines that reach a Docker registry)
#   debootstrap: BASE=harness-rootfs:bookworm, a minimal Debian made by debootstrap
#                and `docker import` (no registry needed; the default here)
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG HIDDEN="sklearn:datasets/data"
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY requirements.txt hide_datasets.py /opt/harness-build/
COPY wheels /opt/harness-build/wheels
RUN python3 -m pip install --no-index --find-links /opt/harness-build/wheels -r /opt/harness-build/requirements.txt \
 && mkdir -p /usr/local/lib/harness \
 && cp /opt/harness-build/hide_datasets.py /usr/local/lib/harness/ \
 && rm -rf /opt/harness-build \
 && python3 /usr/local/lib/harness/hide_datasets.py ${HIDDEN}

# mlebench's user name; uid 1000 is what the docker sandbox runs agents as
RUN (getent passwd 1000 >/dev/null || useradd --uid 1000 --user-group --create-home --home-dir /home/nonroot --shell /bin/bash nonroot) \
 && mkdir -p /home/data /home/submission /home/logs /home/code /home/agent /opt/harness \
 && chown 1000:1000 /home/submission /home/logs /home/code

WORKDIR /home/agent
