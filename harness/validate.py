"""Check a submission's format inside a sandbox, never its score.

    python3 -m harness.validate [SUBMISSION] [--sample SAMPLE]
    /home/validate_submission.sh [SUBMISSION]

Defaults: $SUBMISSION_DIR/submission.csv against $DATA_DIR/sample_submission.csv.
Technique and engineering tasks (HARNESS_TASK_KIND=technique): the outputs named in
$DATA_DIR/task.json exist, and a JSON output satisfies the task's JSON Schema.
Exit 0 and "Submission is valid." or exit 1 and the one-line reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.grading import InvalidSubmissionError, check_submission_format, read_sample, read_submission


def validate(submission: Path, sample: Path) -> str | None:
    """None when `submission` has the sample's format, else the reason it does not."""
    try:
        check_submission_format(read_submission(submission, submission.name), read_sample(sample))
    except InvalidSubmissionError as e:
        return str(e)
    return None


def validate_technique(data: Path, sub_dir: Path) -> str | None:
    """None when every output named in task.json exists (and the JSON one fits its schema), else why not."""
    import json

    import jsonschema

    manifest = json.loads((data / "task.json").read_text())
    for name in manifest["outputs"]:
        if not (sub_dir / name).is_file():
            return f"no {name} in {sub_dir}"
    if manifest.get("schema_file"):
        name = manifest["outputs"][0]
        try:
            doc = json.loads((sub_dir / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return f"{name} is not valid JSON: {e}"
        schema = json.loads((data / manifest["schema_file"]).read_text())
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            return f"{name} violates the schema at {where}: {err.message}"
    return None


def main(argv: list[str] | None = None) -> int:
    data = Path(os.environ.get("DATA_DIR", "/home/data"))
    sub_dir = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
    if os.environ.get("HARNESS_TASK_KIND") == "technique" and (data / "task.json").is_file():
        reason = validate_technique(data, sub_dir)
        print("Submission is valid." if reason is None else f"Submission is invalid: {reason}")
        return 0 if reason is None else 1
    p = argparse.ArgumentParser(prog="validate_submission", description=__doc__.splitlines()[0])
    p.add_argument("submission", nargs="?", type=Path, default=sub_dir / "submission.csv")
    p.add_argument("--sample", type=Path, default=data / "sample_submission.csv")
    args = p.parse_args(argv)
    for attr, name in (("sample", "sample_submission"), ("submission", "submission")):  # Parquet when no CSV
        path = getattr(args, attr)
        if path.name == f"{name}.csv" and not path.is_file() and path.with_suffix(".parquet").is_file():
            setattr(args, attr, path.with_suffix(".parquet"))
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
