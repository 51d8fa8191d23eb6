"""The summary's arithmetic (mean ± SEM over seeds, rates, per-technique means), the CLI's
composable output (full ids when piped, --json everywhere, exit codes) and the one
RunSpec parser behind every door of a run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app, run_exit_code
from harness.errors import RegistryError, RunError
from harness.registry import load_registry
from harness.report import build_grading_report, mean_sem, summarize
from harness.runspec import RunInput, load_run_file, to_run_spec
from harness.spec import AttemptResult, RunSpec, RunState, Settings
from harness.store import ATTEMPTS_SCHEMA, RunStore

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _row(cid: str, seed: int, *, valid: bool, medal: bool = False, above: bool = False, score: float | None = None,
         kind: str = "competition", technique: str | None = None, status: str = "succeeded") -> AttemptResult:
    return AttemptResult(run_id="r-1", attempt_id=f"{cid}__a__s{seed}", task_kind=kind, competition_id=cid,  # type: ignore[arg-type]
                         technique=technique, agent_id="a", seed=seed, sandbox="local", isolation="bwrap",
                         status=status, score=score, valid_submission=valid, submission_exists=valid,  # type: ignore[arg-type]
                         any_medal=medal, gold_medal=medal, above_median=above, median_threshold=0.5,
                         is_lower_better=False, artifacts_dir=f"artifacts/{cid}__a__s{seed}")


#: two competitions x three seeds; per seed: valid 2/2, 1/2, 0/2; medals 1/2, 0/2, 0/2; above median 2/2, 2/2, 1/2
ROWS = [
    _row("c1", 0, valid=True, medal=True, above=True, score=0.9), _row("c2", 0, valid=True, above=True, score=0.7),
    _row("c1", 1, valid=True, above=True, score=0.8), _row("c2", 1, valid=False, above=True, score=None),
    _row("c1", 2, valid=False, above=True, score=None, status="agent_failed"), _row("c2", 2, valid=False, score=0.4),
    # technique tasks: a missing score counts as 0
    _row("t1", 0, valid=True, score=1.0, kind="technique", technique="imbalance"),
    _row("t2", 1, valid=False, score=None, kind="technique", technique="imbalance"),
    _row("t3", 0, valid=True, score=0.25, kind="technique", technique="missing"),
]


def _frame(rows: list[AttemptResult]) -> pd.DataFrame:
    import pyarrow as pa

    return pa.Table.from_pylist([r.model_dump() for r in rows], schema=ATTEMPTS_SCHEMA).to_pandas()


def _state(total: int = len(ROWS)) -> RunState:
    return RunState(run_id="r-1", spec=RunSpec(agent="a", competitions=["c1", "c2"]), status="completed", total=total)


def _sem(values: list[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def test_mean_and_sem_over_seeds() -> None:
    assert mean_sem([]) == (None, None)
    assert mean_sem([0.3]) == (0.3, 0.0)
    m, s = mean_sem([1.0, 0.5, 0.0])
    assert m == pytest.approx(0.5) and s == pytest.approx(0.5 / math.sqrt(3))  # sample std (n-1) / sqrt(n)
    assert s != pytest.approx(math.sqrt(1 / 6) / math.sqrt(3))  # not the population std
    assert mean_sem([2.0, float("nan"), 4.0]) == (3.0, pytest.approx(1.0))  # NaN is no value


def test_summary_rates_are_means_over_seeds_of_per_seed_rates() -> None:
    s = summarize(_state(), _frame(ROWS))
    assert s.valid_submission_rate == pytest.approx(0.5) and s.valid_submission_sem == pytest.approx(_sem([1.0, 0.5, 0.0]))
    assert s.any_medal_rate == pytest.approx(1 / 6) and s.any_medal_sem == pytest.approx(_sem([0.5, 0.0, 0.0]))
    assert s.above_median_rate == pytest.approx(5 / 6) and s.above_median_sem == pytest.approx(_sem([1.0, 1.0, 0.5]))
    assert s.by_status == {"succeeded": 8, "agent_failed": 1} and s.done == 9
    comps = {c.competition_id: c for c in s.competitions}
    assert comps["c1"].score_mean == pytest.approx(0.85) and comps["c1"].score_sem == pytest.approx(_sem([0.9, 0.8]))
    assert comps["c2"].scores == [0.7, None, 0.4] and comps["c2"].valid == 1 and comps["c1"].any_medal == 1
    assert comps["c1"].medals == ["gold", "", ""]
    tech = {t.technique: t for t in s.techniques}
    assert tech["imbalance"].score_mean == pytest.approx(0.5) and tech["imbalance"].score_sem == pytest.approx(0.5)
    assert tech["missing"].score_mean == pytest.approx(0.25) and tech["missing"].attempts == 1
    assert s.technique_score == pytest.approx((1.0 + 0.0 + 0.25) / 3)


def test_a_summary_of_nothing_is_empty() -> None:
    s = summarize(_state(0), _frame([]))
    assert s.valid_submission_rate is None and s.competitions == [] and s.done == 0


def test_grading_report_counts() -> None:
    report = build_grading_report(_frame(ROWS))
    assert report.total_runs == 6 and report.total_valid_submissions == 3 and report.total_medals == 1
    assert report.total_above_median == 5 and report.competition_reports[0].submission_path.endswith("submission/submission.csv")


def test_the_parquet_schema_is_the_result_model() -> None:
    assert ATTEMPTS_SCHEMA.names == list(AttemptResult.model_fields)
    assert str(ATTEMPTS_SCHEMA.field("seed").type) == "int32" and str(ATTEMPTS_SCHEMA.field("score").type) == "double"
    assert str(ATTEMPTS_SCHEMA.field("started_at").type) == "timestamp[us, tz=UTC]"
    assert str(ATTEMPTS_SCHEMA.field("status").type) == "string"  # a Literal


def test_exit_codes() -> None:
    assert run_exit_code("completed", {"succeeded": 4}) == 0
    assert run_exit_code("completed", {"succeeded": 3, "timeout": 1}) == 1
    assert run_exit_code("failed", {}) == 1
    assert run_exit_code("cancelled", {"succeeded": 1, "cancelled": 3}) == 130


@pytest.fixture
def stored_run(tmp_path: Path) -> tuple[Path, str]:
    run_id = "2026-01-01T00-00-00-UTC_a_with-a-long-id-that-a-table-would-cut"
    rs = RunStore(tmp_path, run_id)
    rs.write_state(_state().model_copy(update={"run_id": run_id}))
    for r in ROWS:
        rs.write_attempt(r.model_copy(update={"run_id": run_id}))
    return tmp_path, run_id


def test_piped_output_keeps_full_ids_and_json_parses(stored_run: tuple[Path, str]) -> None:
    store, run_id = stored_run
    listing = runner.invoke(app, ["runs", "--store", str(store)])
    assert listing.exit_code == 0, listing.output
    header, line = listing.output.splitlines()[:2]
    assert header.split("\t")[0] == "run id" and line.split("\t")[0] == run_id and "…" not in listing.output
    runs = json.loads(runner.invoke(app, ["runs", "--store", str(store), "--json"]).output)
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["done"] == 0 and runs[0]["agent_id"] == "a"
    report = runner.invoke(app, ["report", run_id, "--store", str(store)])
    assert report.exit_code == 0 and f"# {run_id} · agent a" in report.output
    assert "c1\t↑\t0.5\t0.9 gold ▲" not in report.output and "c1\t↑\t0.5\t0.9 gold" in report.output
    summary = json.loads(runner.invoke(app, ["report", run_id, "--store", str(store), "--json"]).output)
    assert summary["run_id"] == run_id and summary["valid_submission_rate"] == pytest.approx(0.5)
    missing = runner.invoke(app, ["report", "no-such-run", "--store", str(store)])
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output


def test_every_listing_has_json() -> None:
    for what, key, expected in [("agents", "id", "dummy"), ("splits", "split", "lite"), ("tasks", "task", "imbalance"),
                                ("competitions", "id", "breast-cancer-diagnosis")]:
        res = runner.invoke(app, ["list", what, "--json"])
        assert res.exit_code == 0, res.output
        assert expected in [row[key] for row in json.loads(res.output)]
    comps = {r["id"]: r for r in json.loads(runner.invoke(app, ["list", "competitions", "--json"]).output)}
    assert comps["diabetes-progression"]["lower_better"] is True
    assert runner.invoke(app, ["list", "nothing"]).exit_code == 2


def test_a_real_pipe_prints_full_ids() -> None:
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list", "competitions"], capture_output=True, text=True,
                         cwd=REPO, timeout=120, env={**__import__("os").environ, "COLUMNS": "40"})
    assert out.returncode == 0, out.stderr
    ids = [line.split("\t")[0] for line in out.stdout.splitlines()[1:]]
    assert "japanese-vowels-speaker" in ids and "…" not in out.stdout


# ---------------------------------------------------------------- the RunSpec seam


def test_every_door_gives_the_same_run_spec(tmp_path: Path) -> None:
    reg = load_registry(Settings.from_env())
    fields: dict[str, Any] = dict(split="lite", agent="dummy", seeds=2, technique_tasks="imbalance,missing")
    from_kwargs = to_run_spec(reg, fields)
    run_file = tmp_path / "run.yaml"
    run_file.write_text("split: lite\nagent: dummy\nseeds: 2\ntechnique_tasks: [imbalance, missing]\n")
    from_file = to_run_spec(reg, load_run_file(run_file))
    assert from_kwargs == from_file == to_run_spec(reg, RunInput(**fields)) == to_run_spec(reg, from_kwargs)
    assert from_kwargs.competitions == ["breast-cancer-diagnosis", "diabetes-progression", "digit-images", "italy-power-demand"]
    assert from_kwargs.technique_tasks == ["imbalance", "missing"] and not from_kwargs.include_competitions


def test_bad_run_input_names_the_field(tmp_path: Path) -> None:
    reg = load_registry(Settings.from_env())
    with pytest.raises(RunError, match="field 'seedz'.*known fields: competitions"):
        to_run_spec(reg, {"agent": "dummy", "seedz": 2})
    with pytest.raises(RegistryError, match="unknown agent 'nobody'"):
        to_run_spec(reg, RunSpec(agent="nobody", competitions=["diabetes-progression"]))
    with pytest.raises(RunError, match="nothing to run"):
        to_run_spec(reg, {"agent": "dummy"})
    bad = tmp_path / "run.yaml"
    bad.write_text("agent: dummy\nseeds: -1\nsplit: lite\n")
    res = runner.invoke(app, ["run", "--config", str(bad)])
    assert res.exit_code == 2 and f"{bad}: field 'seeds'" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["run", "--config", str(tmp_path / "absent.yaml")])
    assert res.exit_code == 2 and "absent.yaml: cannot be read" in res.output


def test_a_run_spec_runs_and_a_queued_record_is_kept(ray_local: Any, store: Path) -> None:
    """harness.run(RunSpec) — what the service's driver actor calls — keeps the record the
    service wrote when it queued the run (its created_at and owner)."""
    import datetime as dt

    import harness

    spec = RunSpec(agent="dummy", competitions=["diabetes-progression"], lite=True, owner="alice")
    queued = RunState(run_id="queued-run", spec=spec, owner="alice", status="queued", total=1,
                      created_at=dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
    RunStore(store, "queued-run").write_state(queued)
    result = harness.run(spec, store=store, run_id="queued-run")
    state = RunStore(store, "queued-run").read_state()
    assert result.status == "completed" and state.status == "completed" and state.spec == spec
    assert state.created_at == queued.created_at and state.owner == "alice"
    assert list(result.attempts["attempt_id"]) == ["diabetes-progression__dummy__s0"]


@pytest.mark.slow
def test_harness_run_config(tmp_path: Path, harness_dirs: dict[str, Path]) -> None:
    run_file = tmp_path / "run.yaml"
    run_file.write_text("competitions: [diabetes-progression]\nagent: dummy\nlite: true\nseeds: 2\n")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(run_file), "--store", str(tmp_path / "runs"),
                          "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    run_id, body = out.stdout.split("\n", 1)
    summary = json.loads(body)
    assert summary["run_id"] == run_id and summary["total"] == 2 and summary["by_status"] == {"succeeded": 2}
    spec = RunStore(tmp_path / "runs", run_id).read_state().spec
    assert spec.competitions == ["diabetes-progression"] and spec.seeds == 2 and spec.lite
