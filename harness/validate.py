"""Check a submission's format inside a sandbox, never its score.

    python3 -m harness.validate [SUBMISSION] [--sample SAMPLE]
    /home/validate_submission.sh [SUBMISSION]

Defaults: $SUBMISSION_DIR/submission.csv against $DATA_DIR/sample_submission.csv.
Exit 0 and "Submission is valid." or exit 1 and the one-line reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from harness.grading import InvalidSubmissionError, check_submission_format, read_submission


def validate(submission: Path, sample: Path) -> str | None:
    """None when `submission` has the sample's format, else the reason it does not."""
    try:
        check_submission_format(read_submission(submission, submission.name), pd.read_csv(sample))
    except InvalidSubmissionError as e:
        return str(e)
    return None


def main(argv: list[str] | None = None) -> int:
    data = Path(os.environ.get("DATA_DIR", "/home/data"))
    sub_dir = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
    p = argparse.ArgumentParser(prog="validate_submission", description=__doc__.splitlines()[0])
    p.add_argument("submission", nargs="?", type=Path, default=sub_dir / "submission.csv")
    p.add_argument("--sample", type=Path, default=data / "sample_submission.csv")
    args = p.parse_args(argv)
    if not args.sample.is_file():
        print(f"No sample submission at {args.sample}; nothing to validate against.")
        return 2
    reason = validate(args.submission, args.sample)
    if reason is None:
        print("Submission is valid.")
        return 0
    print(f"Submission is invalid: {reason}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
