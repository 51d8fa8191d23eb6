"""mlebench-form report files of a run, written as attempts finish: one
`competition_report.json` per graded attempt beside its artifacts, and the run's aggregate
`grading_report.json` rebuilt from them (so a crashed run still has a valid report)."""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

from harness.grading import aggregate_reports, mlebench_report
import pyarrow as pa

from harness.objstore import StoreError
from harness.spec import AttemptResult, GradeReport, utcnow
from harness.store import ATTEMPTS_SCHEMA, RunStore, atomic_write_text

log = logging.getLogger(__name__)

#: an attempt's report file, next to its submission/, code/ and logs/
ATTEMPT_REPORT = "competition_report.json"
RUN_REPORT = "grading_report.json"
#: the row's columns a grade fills (the rest describe how the attempt ran)
GRADE_FIELDS = ("score", "submission_exists", "valid_submission", "invalid_reason", "gold_threshold",
                "silver_threshold", "bronze_threshold", "median_threshold", "any_medal", "gold_medal",
                "silver_medal", "bronze_medal", "above_median", "is_lower_better")
#: statuses whose attempts were graded (the others never reached the grader)
GRADED_STATUSES = frozenset({"succeeded", "agent_failed", "timeout", "oom"})


#: how many attempts of a run this process has recorded so far (run dir -> count)
_RUN_REPORTS: dict[str, int] = {}


def _run_entry(report: dict[str, Any], attempt_id: str, seed: int) -> dict[str, Any]:
    return {**report, "submission_path": f"artifacts/{attempt_id}/submission/submission.csv",
            "attempt_id": attempt_id, "seed": int(seed)}


def record_attempt_report(rs: RunStore, row: AttemptResult, report: Optional[GradeReport]) -> None:
    """After `row` was recorded: write the attempt's mlebench report next to its artifacts
    (`artifacts/<attempt_id>/competition_report.json`) and, after the 1st, 2nd, 4th, 8th, ...
    attempt, rewrite the run's `grading_report.json` with every graded competition attempt so
    far, so a run that crashes still has a valid report of at least half of what it finished
    (the next `--resume` writes all of it). A no-op for ungraded attempts
    (infrastructure failures, cancelled) and technique tasks."""
    if report is None or row.task_kind != "competition":
        return
    entry = _run_entry(mlebench_report(report), row.attempt_id, row.seed)
    key = str(rs.dir.resolve())
    try:
        atomic_write_text(rs.artifacts_dir(row.attempt_id) / ATTEMPT_REPORT, json.dumps(entry, indent=4))
        # issue 15 (scale): the aggregate is rebuilt from the report files when this process has recorded 1, 2, 4,
        # 8, ... of the run's attempts (and in full when the run ends, by write_run_report): n attempts cost O(n)
        # in all, not O(n^2), and the driver keeps a counter, not every report
        n = _RUN_REPORTS[key] = _RUN_REPORTS.get(key, 0) + 1
        if n & (n - 1) == 0:
            on_disk = _reports_on_disk(rs)
            rs.write_json(RUN_REPORT, aggregate_reports([on_disk[a] for a in sorted(on_disk)]))
    except (OSError, StoreError) as e:  # the row is recorded; the report is rebuilt from the rows when the run ends
        log.warning("could not write the grading report of %s: %s", row.attempt_id, e)


def _reports_on_disk(rs: RunStore) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((rs.dir / "artifacts").glob(f"*/{ATTEMPT_REPORT}")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and entry.get("attempt_id") == path.parent.name:
            out[path.parent.name] = entry
    return out


def write_run_report(rs: RunStore, attempts: Any) -> dict[str, Any]:
    """The run's `grading_report.json` from its attempts table (a DataFrame): each graded
    competition attempt's report file, or (a run recorded before those files) the report
    rebuilt from its row. Returns what it wrote."""
    on_disk = _reports_on_disk(rs)
    reports = []
    for r in _rows(attempts):
        if r["task_kind"] != "competition" or r["status"] not in GRADED_STATUSES:
            continue
        entry = on_disk.get(r["attempt_id"])
        if entry is None:
            fields = {k: r[k] for k in GRADE_FIELDS}
            gr = GradeReport(competition_id=r["competition_id"], created_at=r["ended_at"] or utcnow(),
                             **{k: v for k, v in fields.items() if v is not None})
            entry = _run_entry(mlebench_report(gr), r["attempt_id"], r["seed"])
        reports.append(entry)
    reports.sort(key=lambda e: e["attempt_id"])
    aggregate = aggregate_reports(reports)
    rs.write_json(RUN_REPORT, aggregate)
    _RUN_REPORTS.pop(str(rs.dir.resolve()), None)
    return aggregate


def _rows(attempts: Any) -> list[dict[str, Any]]:
    """An attempts DataFrame as plain Python rows (None for nulls, native types)."""
    if attempts is None or len(attempts) == 0:
        return []
    rows: list[dict[str, Any]] = pa.Table.from_pandas(attempts, schema=ATTEMPTS_SCHEMA, preserve_index=False).to_pylist()
    return rows


# ---------------------------------------------------------------- regrade
