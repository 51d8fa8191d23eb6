"""Check a submission's format inside a sandbox, never its score.

    python3 -m harness.validate [SUBMISSION] [--sample SAMPLE]
    /home/validate_submission.sh [SUBMISSION]

Defaults: $SUBMISSION_DIR/submission.csv against the competition's sample submission:
$DATA_DIR/$SAMPLE_SUBMISSION (its name from the competition's config.yaml, set by harness),
else the first of $DATA_DIR/sample_submission.csv, sampleSubmission.csv, or another
`*sample*submission*.csv` there. With HARNESS_FORMAT_CHECK=columns (a competition whose
own grader decides validity) columns the sample lacks are allowed.
Technique and engineering tasks (HARNESS_TASK_KIND=technique): the outputs named in
$DATA_DIR/task.json exist, and a JSON output satisfies the task's JSON Schema.
Exit 0 and "Submission is valid." or exit 1 and the one-line reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pydantic import ValidationError

from harness.task_manifest import MANIFEST, read_manifest

if TYPE_CHECKING:
    from harness.spec import AttemptSpec, CompetitionConfig, Settings

#: the names mlebench's competitions give their sample submission, most common first
SAMPLE_NAMES = ("sample_submission.csv", "sampleSubmission.csv", "sample_submission_null.csv", "SampleSubmission.csv")


def sample_submission_name(comp: "CompetitionConfig") -> str:
    """The sample submission's path inside the public data folder, from the config's
    `dataset.sample_submission` (mlebench writes `<id>/prepared/public/sampleSubmission.csv`)."""
    rel = comp.dataset.get("sample_submission", "")
    tail = rel.split("prepared/public/", 1)[1] if "prepared/public/" in rel else Path(rel).name
    return tail or "sample_submission.csv"


def sample_submission_env(a: "AttemptSpec", settings: "Settings") -> dict[str, str]:
    """The sandbox environment that tells this validator the competition's sample submission
    (`SAMPLE_SUBMISSION`, relative to $DATA_DIR); empty for technique tasks or unknown ids."""
    if a.task_kind != "competition":
        return {}
    from harness.tasks import registry_for  # the driver side only: inside a sandbox the validator stays light

    comp = registry_for(settings).competitions.get(a.competition_id)
    if comp is None:
        return {}
    return {"SAMPLE_SUBMISSION": sample_submission_name(comp), "HARNESS_FORMAT_CHECK": "strict" if comp.source == "builtin" else "columns"}


def find_sample(data: Path) -> Optional[Path]:
    """The sample submission in the data folder `data`: $SAMPLE_SUBMISSION, then the usual names,
    then any `*sample*submission*.csv` at the top (None when there is none)."""
    named = os.environ.get("SAMPLE_SUBMISSION")
    candidates = ([data / named] if named else []) + [data / n for n in SAMPLE_NAMES]
    for path in candidates:
        if path.is_file():
            return path
    if data.is_dir():
        for path in sorted(data.iterdir()):
            low = path.name.lower()
            if "sample" in low and "submission" in low and low.endswith(".csv") and path.is_file():
                return path
    return None


def validate(submission: Path, sample: Path, extra_columns: bool = False) -> str | None:
    """None when `submission` has the sample's format, else the reason it does not.
    `extra_columns`: columns the sample lacks are allowed (a competition with its own
    grader, which alone decides; harness's built-in ones are checked strictly)."""
    # pandas only for table submissions: a technique task's check stays a JSON Schema check (fast in a sandbox)
    from harness.grading import InvalidSubmissionError, check_submission_format, read_sample, read_submission

    try:
        sub, ref = read_submission(submission, submission.name), read_sample(sample)
        if extra_columns:
            sub = sub[[c for c in sub.columns if c in ref.columns]]
        check_submission_format(sub, ref)
    except InvalidSubmissionError as e:
        return str(e)
    return None


def validate_technique(data: Path, sub_dir: Path) -> str | None:
    """None when every output named in the task's manifest (`data`/task.json, read with the host's
    own `Manifest` model, harness.task_manifest) exists in `sub_dir` (and the JSON one fits its
    schema), else why not. Where jsonschema is not installed (the docker base image gives agents
    none) the JSON output is only parsed, and a note on stderr says the schema was not checked."""
    import json

    try:
        manifest = read_manifest(data)
    except ValidationError as e:
        err = e.errors()[0]
        return f"{data / MANIFEST} is not a task manifest: {'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}"
    except OSError as e:
        return f"{data / MANIFEST} is not readable: {e.strerror}"
    for name in manifest.outputs:
        if not (sub_dir / name).is_file():
            return f"no {name} in {sub_dir}"
    if manifest.schema_file and manifest.outputs:
        name = manifest.outputs[0]
        try:
            doc = json.loads((sub_dir / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return f"{name} is not valid JSON: {e}"
        try:
            import jsonschema
        except ImportError:
            # one write of the whole line: docker carries stderr and stdout as separate streams, and
            # print()'s two writes (text, then newline) could let a stdout line land between them
            sys.stderr.write(f"note: {name}'s JSON Schema ({manifest.schema_file}) was not checked: "
                             "jsonschema is not installed here\n")
            sys.stderr.flush()
            return None
        schema = json.loads((data / manifest.schema_file).read_text())
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            return f"{name} violates the schema at {where}: {err.message}"
    return None


def main(argv: list[str] | None = None) -> int:
    data = Path(os.environ.get("DATA_DIR", "/home/data"))
    sub_dir = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
    if os.environ.get("HARNESS_TASK_KIND") == "technique" and (data / MANIFEST).is_file():
        reason = validate_technique(data, sub_dir)
        print("Submission is valid." if reason is None else f"Submission is invalid: {reason}")
        return 0 if reason is None else 1
    p = argparse.ArgumentParser(prog="validate_submission", description=__doc__.splitlines()[0])
    p.add_argument("submission", nargs="?", type=Path, default=sub_dir / "submission.csv")
    p.add_argument("--sample", type=Path, default=None, help="default: the competition's sample submission in $DATA_DIR")
    args = p.parse_args(argv)
    if args.sample is None:
        args.sample = find_sample(data)
    for attr, name in (("sample", "sample_submission"), ("submission", "submission")):  # Parquet when no CSV
        path = getattr(args, attr)
        if path is not None and path.name == f"{name}.csv" and not path.is_file() and path.with_suffix(".parquet").is_file():
            setattr(args, attr, path.with_suffix(".parquet"))
    if args.sample is None or not args.sample.is_file():
        print(f"No sample submission at {args.sample or data}; nothing to validate against.")
        return 2
    reason = validate(args.submission, args.sample, extra_columns=os.environ.get("HARNESS_FORMAT_CHECK") == "columns")
    if reason is None:
        print("Submission is valid.")
        return 0
    print(f"Submission is invalid: {reason}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
