"""The server container's entrypoint (`python3 -m harness.serve.container`, Dockerfile.server).

Attempts run in bubblewrap inside this container. Before serving, it proves bubblewrap can
make its namespaces here and stops with one line naming the `docker run` flags when it
cannot, rather than running users' agents without isolation. Tokens come from the file in
$HARNESS_API_TOKENS, else /app/tokens.json when mounted, else the JSON text in
$HARNESS_API_TOKENS_JSON. Then it is `harness serve --host 0.0.0.0 --port 8000 --store /app/runs`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.serve.auth import TOKENS_ENV

MOUNTED_TOKENS = Path("/app/tokens.json")
DOCKER_RUN_FLAGS = ("--cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined "
                    "--security-opt apparmor=unconfined --security-opt systempaths=unconfined")


def bwrap_refusal() -> str | None:
    """Why bubblewrap cannot sandbox attempts in this container, or None when it can. The probe is the
    local sandbox's own (the attempts' namespaces, then setpriv to the agent's uid), not a laxer one."""
    from harness.sandbox.local import bwrap_probe_argv

    if not shutil.which("bwrap"):
        return "bubblewrap is not installed in this image (Dockerfile.server installs it)"
    if os.getuid() == 0 and not shutil.which("setpriv"):
        return "setpriv (util-linux) is not installed in this image: the sandbox needs it to drop agents to their uid"
    probe = subprocess.run(bwrap_probe_argv(), capture_output=True, text=True, timeout=30)
    if probe.returncode == 0:
        return None
    return (f"bubblewrap cannot create its namespaces in this container ({probe.stderr.strip() or probe.returncode}); "
            f"start the container with `docker run {DOCKER_RUN_FLAGS} ...` (see README, 'The benchmark box'), "
            "or set HARNESS_ALLOW_UNSANDBOXED=1 to run agents without isolation (trusted agents only)")


def tokens_file() -> str | None:
    """The tokens file to serve with: $HARNESS_API_TOKENS, the mounted /app/tokens.json, or one written
    from $HARNESS_API_TOKENS_JSON (mode 0600)."""
    if os.environ.get(TOKENS_ENV):
        return os.environ[TOKENS_ENV]
    if MOUNTED_TOKENS.is_file():
        return str(MOUNTED_TOKENS)
    text = os.environ.get("HARNESS_API_TOKENS_JSON")
    if text:
        fd, path = tempfile.mkstemp(prefix="harness-tokens-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path
    return None


def main(argv: list[str] | None = None) -> int:
    why = bwrap_refusal()
    if why and os.environ.get("HARNESS_ALLOW_UNSANDBOXED") != "1":
        print(f"harness server: {why}", file=sys.stderr)
        return 2
    if why:
        os.environ["HARNESS_NO_BWRAP"] = "1"
        print("harness server: WARNING: agents run WITHOUT isolation (HARNESS_ALLOW_UNSANDBOXED=1)", file=sys.stderr)
    tokens = tokens_file()
    if not tokens:
        print(f"harness server: no tokens: mount a tokens file at {MOUNTED_TOKENS} (-v $(pwd)/tokens.json:{MOUNTED_TOKENS}:ro), "
              f"or set {TOKENS_ENV} to its path or HARNESS_API_TOKENS_JSON to its JSON text "
              '(e.g. {"<token>": "alice"}); a server listening beyond loopback needs them', file=sys.stderr)
        return 2
    os.environ[TOKENS_ENV] = tokens
    args = ["serve", "--host", "0.0.0.0", "--port", os.environ.get("HARNESS_PORT", "8000"),
            "--store", os.environ.get("HARNESS_RUNS_DIR", "/app/runs"), *(argv if argv is not None else sys.argv[1:])]
    os.execvp(sys.executable, [sys.executable, "-m", "harness.cli", *args])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
