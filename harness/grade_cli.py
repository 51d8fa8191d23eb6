"""`harness grade-sample`, `harness grade` and `harness regrade`: grading without an agent,
in mlebench's output forms (registered in harness/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer

from harness.cli_common import USER_ERRORS, fail
from harness.grading import mlebench_report
from harness.regrade import GradeInputError, grade, grade_jsonl, regrade
from harness.spec import Settings

DataDirOpt = typer.Option(None, "--data-dir", help="Prepared data (default $HARNESS_DATA_DIR); an `mlebench prepare`d dir is used as it is.")


def _settings(data_dir: Optional[Path]) -> Settings:
    settings = Settings.from_env()
    return settings if data_dir is None else settings.model_copy(update={"data_dir": data_dir.expanduser()})


def _errors() -> tuple[type[BaseException], ...]:
    return (*USER_ERRORS, GradeInputError)


def _fail(e: BaseException) -> NoReturn:
    fail(e)


def _say(text: str) -> None:
    """A status line on stderr, so that stdout holds only the report."""
    typer.echo(text, err=True)


def grade_sample(
    submission: Path = typer.Argument(..., help="The submission file (.csv; .parquet for harness's own competitions)."),
    competition_id: str = typer.Argument(..., help="Competition id (`harness list competitions`)."),
    lite: bool = typer.Option(False, "--lite", help="The lite data and leaderboard."),
    as_json: bool = typer.Option(False, "--json", help="Print only the report, as JSON."),
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Grade one submission file as `mlebench grade-sample` does and print its report."""
    try:
        report = mlebench_report(grade(competition_id, submission, lite=lite, settings=_settings(data_dir)))
    except _errors() as e:
        _fail(e)
    if not as_json:
        _say("Competition report:")
    print(json.dumps(report, indent=4), flush=True)


def grade_batch(
    submissions: Path = typer.Option(..., "--submissions", "--submission", help='JSONL, one {"competition_id", "submission_path"} a line.'),
    output_dir: Path = typer.Option(..., "--output-dir", help="Where the aggregate grading_report.json goes."),
    lite: bool = typer.Option(False, "--lite", help="The lite data and leaderboards."),
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Grade a JSONL of submissions as `mlebench grade` does; write its aggregate report."""

    try:
        path = grade_jsonl(submissions, output_dir, lite=lite, settings=_settings(data_dir))
    except _errors() as e:
        _fail(e)
    summary = {k: v for k, v in json.loads(path.read_text()).items() if k != "competition_reports"}
    print(json.dumps(summary, indent=4))
    _say(f"Saved summary report to {path}")


def regrade_run(
    run_id: str = typer.Argument(..., help="The run to grade again."),
    store: Optional[Path] = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs)."),
) -> None:
    """Grade a finished run again from its artifacts (new grader or leaderboard); keeps the old table."""

    try:
        result = regrade(run_id, store=store)
    except _errors() as e:
        _fail(e)
    _say(f"{run_id}: regraded {len(result.regraded)} attempt(s), {len(result.changed)} changed; previous table "
         f"kept as {result.kept[0].name if result.kept else '-'}")
    for attempt_id in result.changed:
        print(f"changed {attempt_id}")
