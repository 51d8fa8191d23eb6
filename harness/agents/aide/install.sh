#!/bin/sh
# AIDE's own environment: aideml 0.2.2 hard-pins old numpy/scipy/pandas/torch, so it cannot share
# harness's. Installed --no-deps with the small packages it imports, into a directory beside the
# interpreter (the local sandbox mounts the interpreter's tree read-only) that is on nobody's sys.path.
# Idempotent. AIDE_ENV overrides the place.
set -eu
PY=${PYTHON:-python3}
TARGET=${AIDE_ENV:-$($PY -c 'import sys, os; print(os.path.join(sys.prefix, "lib", "harness-aide"))')}
if PYTHONPATH=$TARGET $PY -c 'import aide.agent, aide.interpreter, openai' 2>/dev/null; then
  echo "aide env ready: $TARGET"; exit 0
fi
$PY -m pip install -q --no-deps --target "$TARGET" --upgrade \
  aideml==0.2.2 openai==1.70.0 anthropic==0.40.0 jiter distro funcy==2.0 humanize dataclasses_json marshmallow \
  typing_inspect mypy_extensions omegaconf antlr4-python3-runtime==4.9.3 loguru shutup coolname genson black==24.3.0 \
  pathspec backoff igraph texttable
PYTHONPATH=$TARGET $PY -c 'import aide.agent, aide.interpreter, openai'
echo "aide env ready: $TARGET"
