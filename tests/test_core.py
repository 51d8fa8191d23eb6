"""The core, end to end on a real local Ray, real bubblewrap sandboxes and real Parquet:
runs, statuses, retries, resume after SIGKILL, Ctrl-C, malformed submissions, the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import harness
from harness.registry import RegistryError, load_registry, read_competition_set
from harness.spec import Settings
from harness.store import ATTEMPTS_SCHEMA, RunStore, list_runs

TEST_AGENTS = Path(__file__).parent / "agents"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def test_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(TEST_AGENTS))


#: `python -m harness.cli` with Ctrl-C's KeyboardInterrupt on, as in a terminal: a test process started in
#: the background (`pytest ... &`, a CI runner's job) has SIGINT ignored, which its children inherit
CTRL_C_ON = ["-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "runpy.run_module('harness.cli', run_name='__main__', alter_sys=True)"]


def _cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, *CTRL_C_ON, *args], cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_cli_dummy_on_the_lite_split(harness_dirs: dict, store: Path) -> None:
    """`harness run --split lite --agent dummy` from the command line: every attempt
    succeeds with a valid submission; the run id comes first and the JSON summary last."""
    proc = _cli("run", "--split", "lite", "--agent", "dummy", "--store", str(store), "--json")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run_id = out.splitlines()[0].strip()
    summary = json.loads(out[out.index("\n{") + 1:])
    assert summary["run_id"] == run_id
    df = RunStore(store, run_id).attempts()
    lite = read_competition_set("lite")
    assert sorted(df["competition_id"]) == sorted(lite)
    assert (df["status"] == "succeeded").all() and df["valid_submission"].all(), df[["attempt_id", "status", "invalid_reason"]]
    assert (df["isolation"] == "bwrap").all()
    # the store holds every file DESIGN promises
    run_dir = store / run_id
    for name in ("run.json", "attempts.parquet", "grading_report.json", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert pq.read_schema(run_dir / "attempts.parquet").names == ATTEMPTS_SCHEMA.names
    report = json.loads((run_dir / "grading_report.json").read_text())
    assert report["total_runs"] == len(lite) and report["total_valid_submissions"] == len(lite)
    for aid in df["attempt_id"]:
        art = run_dir / "artifacts" / aid
        assert (art / "submission" / "submission.csv").is_file() and (art / "logs" / "agent.log").is_file()
        assert (art / "code" / "run.py").is_file()
    listing = _cli("runs", "--store", str(store)).communicate(timeout=120)[0]
    assert "completed" in listing and f"{len(lite)}/{len(lite)}" in listing


def test_baseline_beats_dummy_everywhere(ray_local, store: Path) -> None:
    dummy = harness.run(split="all", agent="dummy", lite=True, store=store)
    baseline = harness.run(split="all", agent="baseline", lite=True, store=store, max_concurrency=2)
    d = dummy.attempts.set_index("competition_id")
    b = baseline.attempts.set_index("competition_id")
    assert b["valid_submission"].all(), b[["status", "invalid_reason", "error"]]
    # the agent checked its own submission with the in-sandbox validator, which gives no score
    log = (store / baseline.run_id / "artifacts" / baseline.attempts["attempt_id"].iloc[0] / "logs" / "agent.log").read_text()
    assert "validation: Submission is valid." in log
    registry = load_registry(Settings.from_env())
    for cid in d.index:
        lower = bool(b.loc[cid, "is_lower_better"])
        better = b.loc[cid, "score"] < d.loc[cid, "score"] if lower else b.loc[cid, "score"] > d.loc[cid, "score"]
        assert better, f"{cid}: baseline {b.loc[cid, 'score']} vs dummy {d.loc[cid, 'score']}"
        assert not d.loc[cid, "above_median"], f"{cid}: the dummy agent must be below the median"
        # graded against the lite leaderboard (the --lite run's sizes), whose median it reports
        board = pd.read_csv(registry.competitions[cid].dir / "leaderboard.lite.csv")
        assert b.loc[cid, "median_threshold"] == pytest.approx(float(board["score"].median())), cid
    for cid in ("digit-images", "japanese-vowels-speaker"):  # an image and a time-series task: above the median
        assert b.loc[cid, "above_median"], f"{cid}: baseline {b.loc[cid, 'score']} vs median {b.loc[cid, 'median_threshold']}"


def test_statuses_do_not_leak_between_attempts(ray_local, store: Path, test_agents: None) -> None:
    """One attempt times out, one exceeds memory, one fails, one succeeds: each gets its
    own status and the timeout leaves no process behind."""
    marker_env = "chaos-marker"
    result = harness.run(competitions=["breast-cancer-diagnosis"], agent="chaos", seeds=4, store=store, max_concurrency=2)
    by_seed = result.attempts.set_index("seed")
    assert by_seed.loc[0, "status"] == "succeeded" and by_seed.loc[0, "valid_submission"]
    assert by_seed.loc[1, "status"] == "timeout"
    assert by_seed.loc[1, "agent_seconds"] < 4 + 6
    assert by_seed.loc[2, "status"] == "oom", by_seed.loc[2, "error"]
    assert by_seed.loc[3, "status"] == "agent_failed" and by_seed.loc[3, "exit_code"] == 1
    assert (by_seed["tries"] == 1).all(), "agent failures are never retried"
    time.sleep(0.5)
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker_env)]
    assert leftovers == []
    assert result.summary.by_status == {"succeeded": 1, "timeout": 1, "oom": 1, "agent_failed": 1}


def _cmdline_has(p: Path, marker: str) -> bool:
    try:
        return marker.encode() in (p / "cmdline").read_bytes()
    except OSError:
        return False


BAD_CASES = {
    0: "no submission.csv was written",
    1: "not a CSV file",
    2: "is empty",
    3: "value(s) missing",
    4: "unknown id value(s)",
    5: "unexpected column(s) 'prediction'",
    6: "missing column(s) 'malignant'",
    7: "empty/NaN value(s)",
    8: "infinite value(s)",
    9: "must be numeric",
}


def test_malformed_submissions_get_clear_reasons(ray_local, store: Path, test_agents: None, sandbox_kind: str) -> None:
    result = harness.run(competitions=["breast-cancer-diagnosis"], agent="bad-submitter", seeds=11, store=store, sandbox=sandbox_kind)
    rows = result.attempts.set_index("seed")
    assert (rows["status"] == "succeeded").all(), rows[["status", "error"]]
    for seed, reason in BAD_CASES.items():
        assert not rows.loc[seed, "valid_submission"]
        assert reason in rows.loc[seed, "invalid_reason"], (seed, rows.loc[seed, "invalid_reason"])
        assert "\n" not in rows.loc[seed, "invalid_reason"]
    assert rows.loc[10, "valid_submission"] and rows.loc[10, "score"] == 0.5
    assert not rows.loc[0, "submission_exists"] and rows.loc[1, "submission_exists"]


def test_infrastructure_failures_are_retried_and_kept_apart(ray_local, store: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    comps = tmp_path / "comps"
    broken = comps / "broken-source"
    broken.mkdir(parents=True)
    src = REPO / "harness/competitions/breast-cancer-diagnosis"
    for f in ("grade.py", "description.md", "leaderboard.csv"):
        (broken / f).write_text((src / f).read_text())
    (broken / "config.yaml").write_text((src / "config.yaml").read_text().replace("breast-cancer-diagnosis", "broken-source"))
    (broken / "prepare.py").write_text("def prepare(raw, public, private):\n    raise OSError('the source archive is unreadable')\n")
    monkeypatch.setenv("HARNESS_COMPETITIONS_PATH", str(comps))
    result = harness.run(competitions=["broken-source", "breast-cancer-diagnosis"], agent="dummy", store=store, max_retries=2)
    rows = result.attempts.set_index("competition_id")
    assert rows.loc["broken-source", "status"] == "infra_error"
    assert rows.loc["broken-source", "tries"] == 3
    assert "the source archive is unreadable" in rows.loc["broken-source", "error"]
    assert rows.loc["breast-cancer-diagnosis", "status"] == "succeeded"


def _wait_for_rows(store: Path, run_id: str, n: int, timeout: float = 300, status: str | None = None,
                   driver: subprocess.Popen | None = None) -> None:
    """Until the run has `n` rows (of `status`, if given); fails at once if `driver` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver is not None and driver.poll() is not None:
            raise AssertionError(f"the driver exited before {n} rows: {driver.communicate()[1][-2000:]}")
        if status is None:
            count = len(list((store / run_id / "attempts").glob("*.parquet")))
        else:
            rows = RunStore(store, run_id).attempts()
            count = int((rows["status"] == status).sum()) if len(rows) else 0
        if count >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} rows after {timeout}s")


def _start_run(store: Path, *args: str) -> tuple[subprocess.Popen, str]:
    proc = _cli("run", "--store", str(store), "--agent", "slow", "-c", "breast-cancer-diagnosis", "-c",
                "diabetes-progression", "--seeds", "3", "--max-concurrency", "1", *args,
                env={"HARNESS_AGENTS_PATH": str(TEST_AGENTS)})
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""
    return proc, run_id


def _resume(store: Path, run_id: str) -> str:
    proc = _cli("run", "--resume", run_id, "--store", str(store), env={"HARNESS_AGENTS_PATH": str(TEST_AGENTS)})
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def test_ctrl_c_cancels_then_a_sigkilled_resume_resumes_again(harness_dirs: dict, store: Path) -> None:
    """Ctrl-C of a run cancels it cleanly (exit 130, the run resumable); its `--resume` SIGKILLed in the
    middle leaves it interrupted; the next `--resume` finishes it, keeping every row written before."""
    proc, run_id = _start_run(store)
    _wait_for_rows(store, run_id, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert RunStore(store, run_id).read_state().status == "cancelled"
    rows = RunStore(store, run_id).attempts()
    assert "cancelled" in set(rows["status"]) or len(rows) < 6
    cancelled = set(rows.loc[rows["status"] == "cancelled", "attempt_id"])

    # the resume, SIGKILLed once it has written a row of its own
    resumed = _cli("run", "--resume", run_id, "--store", str(store), env={"HARNESS_AGENTS_PATH": str(TEST_AGENTS)})
    succeeded = int((rows["status"] == "succeeded").sum())
    _wait_for_rows(store, run_id, succeeded + 1, status="succeeded", driver=resumed)
    os.kill(resumed.pid, signal.SIGKILL)
    resumed.wait()
    before = RunStore(store, run_id).attempts()
    before = before[before["status"] == "succeeded"]
    assert succeeded < len(before) < 6
    listing = _cli("runs", "--store", str(store)).communicate(timeout=120)[0]
    assert "interrupted" in listing

    _resume(store, run_id)
    after = RunStore(store, run_id).attempts()
    assert len(after) == 6 and after["attempt_id"].is_unique
    assert (after["status"] == "succeeded").all()  # the cancelled attempts ran again
    assert cancelled <= set(after["attempt_id"])
    # rows written before the crash were kept, not redone
    kept = after.set_index("attempt_id").loc[before["attempt_id"], "ended_at"]
    assert list(kept) == list(before.set_index("attempt_id")["ended_at"])
    assert RunStore(store, run_id).read_state().status == "completed"


def test_load_results_reads_every_run(ray_local, store: Path) -> None:
    a = harness.run(competitions=["diabetes-progression"], agent="dummy", seeds=2, store=store)
    b = harness.run(competitions=["diabetes-progression"], agent="dummy", seeds=1, store=store)
    df = harness.load_results(store)
    assert sorted(df["run_id"].unique()) == sorted([a.run_id, b.run_id]) and len(df) == 3
    assert [s.run_id for s in list_runs(store)] == [b.run_id, a.run_id]
    assert isinstance(a.attempts, pd.DataFrame) and a.summary.valid_submission_rate == 1.0
    assert a.summary.valid_submission_sem == 0.0


def test_unknown_names_fail_before_anything_runs(harness_dirs: dict, store: Path) -> None:
    for args, needle in [(["-c", "no-such-competition"], "unknown competition 'no-such-competition'"),
                         (["--split", "lite", "--agent", "nobody"], "unknown agent 'nobody'"),
                         (["--split", "no-such-split"], "neither a split")]:
        proc = _cli("run", "--store", str(store), *args)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and needle in err, err
        assert "Traceback" not in err
    assert list_runs(store) == []


def test_a_malformed_folder_is_reported_and_hides_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comps = tmp_path / "comps"
    (comps / "no-grader").mkdir(parents=True)
    (comps / "no-grader" / "config.yaml").write_text("id: no-grader\nname: x\npreparer: prepare:prepare\n")
    (comps / "bad-yaml").mkdir()
    (comps / "bad-yaml" / "config.yaml").write_text("id: [unclosed\n")
    agents = tmp_path / "agents"
    (agents / "no-command").mkdir(parents=True)
    (agents / "no-command" / "config.yaml").write_text("resources: {cpus: -1}\n")
    monkeypatch.setenv("HARNESS_COMPETITIONS_PATH", str(comps))
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(agents))
    reg = load_registry(Settings.from_env())
    assert "breast-cancer-diagnosis" in reg.competitions and "dummy" in reg.agents
    text = "\n".join(reg.problems)
    assert "no-grader/config.yaml: field 'grader'" in text
    assert "bad-yaml/config.yaml: not valid YAML" in text
    assert "no-command/config.yaml: field 'resources.cpus'" in text
    # asked for by name, a broken folder is named itself, not whichever broke first
    (agents / "aaa-broken").mkdir()
    (agents / "aaa-broken" / "config.yaml").write_text("command: [\n")
    reg = load_registry(Settings.from_env())
    with pytest.raises(RegistryError, match=r"agent 'no-command' could not be loaded: .*no-command/config.yaml: field 'resources.cpus'"):
        reg.agent("no-command")
    with pytest.raises(RegistryError, match=r"competition 'bad-yaml' could not be loaded: .*bad-yaml/config.yaml: not valid YAML"):
        reg.competition("bad-yaml")
    with pytest.raises(RegistryError, match=r"unknown agent 'nope'.*could not be loaded"):
        reg.agent("nope")


def test_two_processes_prepare_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comps = tmp_path / "comps" / "counted"
    comps.mkdir(parents=True)
    counter = tmp_path / "count.txt"
    src = REPO / "harness/competitions/diabetes-progression"
    (comps / "config.yaml").write_text((src / "config.yaml").read_text().replace("diabetes-progression", "counted"))
    (comps / "grade.py").write_text((src / "grade.py").read_text())
    (comps / "prepare.py").write_text(
        "import time\n"
        "import pandas as pd\n\n\n"
        "def prepare(raw, public, private):\n"
        f"    open({str(counter)!r}, 'a').write('x')\n"
        "    time.sleep(1.5)  # long enough for the other processes to arrive\n"
        "    pd.DataFrame({'id': [1, 2], 'progression': [1.0, 2.0], 'bmi': [20.0, 30.0]}).to_csv(public / 'train.csv', index=False)\n"
        "    pd.DataFrame({'id': [3], 'progression': [0.0]}).to_csv(public / 'sample_submission.csv', index=False)\n"
        "    pd.DataFrame({'id': [3], 'progression': [3.0]}).to_csv(private / 'answers.csv', index=False)\n")
    env = {"HARNESS_COMPETITIONS_PATH": str(tmp_path / "comps"), "HARNESS_DATA_DIR": str(tmp_path / "data")}
    procs = [_cli("prepare", "-c", "counted", env=env) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert counter.read_text() == "x"
    assert (tmp_path / "data" / "counted" / "prepared" / "private" / "answers.csv").is_file()
    assert not list((tmp_path / "data" / "counted").glob(".tmp-*"))
