"""Entry script for `ray submit cluster.yaml experiments/submit_run.py -- <harness run arguments>`.

`ray submit` copies this file to the head node and runs it there with the arguments after
`--`; it runs `harness run <arguments>` against the cluster the head belongs to (RAY_ADDRESS,
else `auto`), so `ray submit cluster.yaml experiments/submit_run.py -- --split lite --agent baseline`
is `harness run --split lite --agent baseline` on the cluster. With token authentication on
(cluster.yaml keeps it on), the head's own token file (~/.ray/auth_token) is used; exit codes are
`harness run`'s.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    os.environ.setdefault("RAY_ADDRESS", "auto")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from harness.cli import main as harness_main

    sys.argv = ["harness", "run", *argv]
    try:
        harness_main()
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
