"""Grading without an agent, and mlebench's report files.

    grade(competition_id, path)          one submission file -> GradeReport (`harness grade-sample`)
    grade_jsonl(jsonl, output_dir)       mlebench's JSONL batch -> its aggregate grading_report.json (`harness grade`)
    regrade(run_id)                      a finished run graded again from its artifacts (`harness regrade`)
    record_attempt_report(rs, row, r)    an attempt's `competition_report.json` and the run's
                                         `grading_report.json`, written the moment the attempt is recorded

Every report is in mlebench's form (`harness.grading.mlebench_report`): its keys in its
order, then `invalid_reason` (and, in a run's report, `attempt_id` and `seed`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from harness.grading import aggregate_reports, grade_submission, mlebench_report
from harness.spec import AttemptResult, AttemptSpec, GradeReport, Resources, Settings, utcnow
from harness.data import ensure_prepared
from harness.errors import RegistryError
from harness.orchestrator import _refuse_if_live
from harness.report import summarize
from harness.run_reports import ATTEMPT_REPORT, GRADE_FIELDS, GRADED_STATUSES, RUN_REPORT, _rows, _run_entry, write_run_report
from harness.store import ATTEMPTS_SCHEMA, RunStore, _write_table, atomic_write_text, default_store
from harness.tasks import CompetitionTask, registry_for

log = logging.getLogger("harness.regrade")

class GradeInputError(ValueError):
    """A grading input (JSONL line, run) is unusable; the message names it and the fix."""


# ---------------------------------------------------------------- one file, a batch


def grade(competition_id: str, submission: str | Path, lite: bool = False,
          settings: Optional[Settings] = None) -> GradeReport:
    """Grade the file `submission` for `competition_id` as `mlebench grade-sample` does (preparing
    a built-in competition's data first if needed; an mlebench data dir is used in place).
    `lite`: the lite data and leaderboard. Raises RegistryError for an unknown id and
    PrepareError when the data cannot be had; never for what the file holds."""

    settings = settings or Settings.from_env()
    comp = registry_for(settings).competition(competition_id)
    data = ensure_prepared(comp, settings, lite)
    path = Path(str(submission))
    return grade_submission(comp, path, data.answers, data.sample_submission, lite=lite, submission_path=str(path))


def read_submissions_jsonl(path: Path) -> list[tuple[str, str]]:
    """(competition_id, submission_path) per line of mlebench's submissions JSONL (blank lines
    and lines starting with `#` or `//` skipped, as mlebench does). Raises GradeInputError."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GradeInputError(f"{path}: cannot be read ({e})") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise GradeInputError(f"{path}:{n}: not a JSON object ({e.msg}); each line is "
                                  '{"competition_id": ..., "submission_path": ...}') from None
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("competition_id", "submission_path")):
            raise GradeInputError(f"{path}:{n}: needs string fields `competition_id` and `submission_path`")
        out.append((obj["competition_id"], obj["submission_path"]))
    return out


def grade_jsonl(submissions: Path, output_dir: Path, lite: bool = False,
                settings: Optional[Settings] = None) -> Path:
    """Grade every line of mlebench's submissions JSONL and write mlebench's aggregate report to
    `output_dir/<timestamp>_grading_report.json` (its name in mlebench) and, the same content,
    `output_dir/grading_report.json`. Returns the timestamped path. An unknown competition id
    raises RegistryError naming its line; nothing is written then."""

    reports = []
    for n, (cid, sub) in enumerate(read_submissions_jsonl(submissions), 1):
        try:
            reports.append(mlebench_report(grade(cid, sub, lite=lite, settings=settings)))
        except RegistryError as e:
            raise RegistryError(f"{submissions} (entry {n}): {e}") from None
    aggregate = aggregate_reports(reports)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{time.strftime('%Y-%m-%dT%H-%M-%S-%Z', time.gmtime())}_grading_report.json"
    text = json.dumps(aggregate, indent=2)
    atomic_write_text(path, text)
    atomic_write_text(output_dir / RUN_REPORT, text)
    return path


@dataclass
class RegradeResult:
    """What `regrade` did: the attempts regraded and those whose grade changed, and where the
    previous table and report were kept."""

    run_id: str
    regraded: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def regrade(run_id: str, store: Path | str | None = None, settings: Optional[Settings] = None) -> RegradeResult:
    """Grade a run's competition attempts again from their submissions on disk (after a grader
    or leaderboard changed) and rewrite their rows, report files and summary. The previous
    table is kept as `attempts.<timestamp>.parquet` (and the report as
    `grading_report.<timestamp>.json`). A row's grade columns change only where the new
    grade differs (then also its grade_seconds); technique rows and attempts that never
    reached the grader stay as they were. Raises RunNotFound, or RunError for a live run."""

    rs = RunStore(store if store is not None else default_store(), run_id)
    state = rs.read_state()
    _refuse_if_live(state)
    settings = settings or Settings.from_env()
    reg = registry_for(settings)
    table = rs.attempts()
    rows = _rows(table)
    stamp = utcnow().strftime("%Y-%m-%dT%H-%M-%S-%f")
    result = RegradeResult(run_id=run_id)
    kept = rs.dir / f"attempts.{stamp}.parquet"
    _write_table(kept, pa.Table.from_pandas(table, schema=ATTEMPTS_SCHEMA, preserve_index=False))
    result.kept.append(kept)
    if (rs.dir / RUN_REPORT).is_file():
        old_report = rs.dir / f"grading_report.{stamp}.json"
        atomic_write_text(old_report, (rs.dir / RUN_REPORT).read_text())
        result.kept.append(old_report)
    task = CompetitionTask()
    for r in rows:
        if r["task_kind"] != "competition" or r["status"] not in GRADED_STATUSES:
            continue
        comp = reg.competition(r["competition_id"])
        ensure_prepared(comp, settings, state.spec.lite)  # one clear error here if the data cannot be had
        spec = AttemptSpec(run_id=run_id, attempt_id=r["attempt_id"], competition_id=comp.id, agent_id=r["agent_id"],
                           seed=r["seed"], lite=state.spec.lite, time_limit_s=1.0, resources=Resources.model_validate({}))
        outputs = task.outputs(rs.artifacts_dir(r["attempt_id"]))
        report = task.grade(spec, settings, outputs)
        new = report.model_dump(include=set(GRADE_FIELDS))
        result.regraded.append(r["attempt_id"])
        if any(new[k] != r[k] for k in GRADE_FIELDS):
            result.changed.append(r["attempt_id"])
            row = AttemptResult(**{**r, **new, "grade_seconds": report.grade_seconds})
        else:
            row = AttemptResult(**r)
        rs.write_attempt(row)
        atomic_write_text(rs.artifacts_dir(row.attempt_id) / ATTEMPT_REPORT,
                          json.dumps(_run_entry(mlebench_report(report), row.attempt_id, row.seed), indent=4))
    rs.compact()
    attempts = rs.attempts()
    write_run_report(rs, attempts)
    rs.write_json("summary.json", summarize(state, attempts, rs.technique_grades()).model_dump(mode="json"))
    return result


# ---------------------------------------------------------------- an uploaded file (POST /grade)

#: the largest submission `POST /grade` takes
MAX_UPLOAD_BYTES = 256 << 20


def parse_upload(body: bytes, content_type: str) -> tuple[dict[str, str], Optional[tuple[str, bytes]]]:
    """A `multipart/form-data` body as (text fields, (file name, file bytes) of its first file
    part), or, any other content type, the raw body as the file. Raises GradeInputError."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}, ("submission.csv", body)
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise GradeInputError("the multipart body cannot be parsed; send the file as form field `file`")
    fields: dict[str, str] = {}
    upload: Optional[tuple[str, bytes]] = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None and upload is None:
            upload = (filename, data)
        elif isinstance(name, str):
            fields[name] = data.decode("utf-8", "replace")
    return fields, upload


def grade_upload(body: bytes, content_type: str, competition_id: Optional[str] = None, lite: Optional[bool] = None,
                 filename: Optional[str] = None, settings: Optional[Settings] = None) -> dict[str, Any]:
    """Grade a submission sent over HTTP (multipart field `file`, plus `competition_id` and
    `lite` as form fields or query parameters; or the raw file as the body) and answer its
    mlebench report. The file is graded from a private temporary folder under the name's
    suffix only; the report names the uploaded file, never a server path, and holds nothing
    of the answers but what mlebench's report holds. Raises GradeInputError, RegistryError."""
    import tempfile

    fields, upload = parse_upload(body, content_type)
    competition_id = competition_id or fields.get("competition_id")
    if not competition_id:
        raise GradeInputError("name the competition: form field or query parameter `competition_id`")
    if lite is None:
        lite = fields.get("lite", "").strip().lower() in ("1", "true", "yes", "on")
    if upload is None:
        raise GradeInputError("no file in the request: send the submission as form field `file`")
    import re

    name = Path(filename or upload[0] or "submission.csv").name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-100:].lstrip(".") or "submission.csv"  # a plain file name
    with tempfile.TemporaryDirectory(prefix="harness-grade-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(upload[1])
        report = mlebench_report(grade(competition_id, path, lite=lite, settings=settings))
    report["submission_path"] = name
    if report.get("invalid_reason"):
        report["invalid_reason"] = str(report["invalid_reason"]).replace(str(path), name)
    return report
