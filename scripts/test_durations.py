"""Write tests/durations.json (seconds per test file) from the `--durations=0` report of a test run.

    bash scripts/test.sh --durations=0 | tee /tmp/tests.log
    python3 scripts/test_durations.py /tmp/tests.log

tests/conftest.py runs the files in that order, longest first, so the xdist workers of
scripts/test.sh end together instead of one finishing a long file alone. The numbers order
files and nothing else: a stale or missing entry only makes the schedule a little worse.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

LINE = re.compile(r"^\s*([\d.]+)s (?:call|setup|teardown)\s+(tests/[^:\s]+\.py)::")


def main(log: str) -> None:
    seconds: Counter[str] = Counter()
    for line in Path(log).read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            seconds[m.group(2)] += float(m.group(1))
    if not seconds:
        raise SystemExit(f"{log}: no `--durations=0` lines (run the tests with --durations=0)")
    out = Path(__file__).resolve().parent.parent / "tests" / "durations.json"
    out.write_text(json.dumps({f: round(s, 1) for f, s in sorted(seconds.items())}, indent=1) + "\n")
    print(f"{out}: {len(seconds)} files, {sum(seconds.values()):.0f} s in all")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 scripts/test_durations.py <log of a test run with --durations=0>")
    main(sys.argv[1])
