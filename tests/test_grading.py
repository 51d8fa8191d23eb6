"""Grading exactly as mlebench does, on mlebench-format competition folders written here
(accuracy, ROC AUC, RMSLE by position, 3-class log loss on one-hot answers) whose data is
prepared by hand in mlebench's layout (no harness marker): the score rounded to 5 decimals
before it meets the unrounded thresholds (a tie after rounding that misses before), a score
equal to the median, `awards_medals: false` still reporting gold, an extra column the
folder's grader accepts, a grader exception, an absent file, a non-CSV suffix, shuffled rows.
The same reports from `harness grade-sample`, `harness grade` (JSONL -> aggregate report),
`POST /grade` and `Client.grade`; `harness regrade` of a real run; the hand-prepared data
still there byte for byte. Expected values come from scikit-learn and mlebench's rules as
written out below, never from harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, mean_squared_log_error, roc_auc_score

from harness.grading import REPORT_KEYS, mlebench_report
from harness.regrade import grade, grade_jsonl
from harness.spec import Settings

REPO = Path(__file__).resolve().parent.parent
N_TEAMS = 20  # medal positions 2 / 4 / 8, median between positions 10 and 11
AGG_KEYS = ["total_runs", "total_runs_with_submissions", "total_valid_submissions", "total_medals",
            "total_gold_medals", "total_silver_medals", "total_bronze_medals", "total_above_median",
            "competition_reports"]

GRADERS = {
    "toy-accuracy": """\
        from sklearn.metrics import accuracy_score
        from mlebench.competitions.utils import prepare_for_accuracy_metric

        def grade(submission, answers):
            return accuracy_score(**prepare_for_accuracy_metric(
                submission=submission, answers=answers, target_column="label", id_column="id"))
        """,
    "toy-auroc": """\
        from sklearn.metrics import roc_auc_score
        from mlebench.competitions.utils import prepare_for_auroc_metric

        def grade(submission, answers):
            return roc_auc_score(**prepare_for_auroc_metric(submission, answers, id_col="id", target_col="target"))
        """,
    "toy-rmsle": """\
        import numpy as np
        from sklearn.metrics import mean_squared_log_error
        from mlebench.grade_helpers import InvalidSubmissionError

        def grade(submission, answers):
            # by position, as some mlebench graders do: the rows must come in the answers' order
            if len(submission) != len(answers):
                raise InvalidSubmissionError("Submission and answers must have the same length")
            return float(np.sqrt(mean_squared_log_error(answers["y"], submission["y"])))
        """,
    "toy-logloss": """\
        from sklearn.metrics import log_loss
        from mlebench.grade_helpers import InvalidSubmissionError

        CLASSES = ["cat", "dog", "bird"]

        def grade(submission, answers):
            missing = [c for c in ["id"] + CLASSES if c not in submission.columns]
            if missing:
                raise InvalidSubmissionError(f"Submission is missing columns {missing}")
            sub, ans = submission.sort_values("id"), answers.sort_values("id")
            return log_loss(ans[CLASSES].to_numpy().argmax(axis=1), sub[CLASSES].to_numpy(), labels=[0, 1, 2])
        """,
}

PREPARE = """\
def prepare(raw, public, private):
    raise RuntimeError("this folder's data is prepared by hand; harness must use it in place")
"""


# ---------------------------------------------------------------- mlebench's rules, written out


def _mlebench_expected(raw: Optional[float], board: list[float]) -> dict[str, Any]:
    """What mlebench reports for a raw grader score against a leaderboard (best first, file order)."""
    n = len(board)
    gold, silver, bronze = board[max(1, int(0.1 * n)) - 1], board[max(1, int(0.2 * n)) - 1], board[max(1, int(0.4 * n)) - 1]
    median = float(pd.Series(board).median())
    lower = board[0] < board[-1]
    score = None if raw is None else round(raw, 5)
    out = dict(score=score, gold_threshold=gold, silver_threshold=silver, bronze_threshold=bronze,
               median_threshold=median, is_lower_better=lower)
    if score is None:
        return {**out, "gold_medal": False, "silver_medal": False, "bronze_medal": False, "any_medal": False, "above_median": False}
    ok = (lambda t: score <= t) if lower else (lambda t: score >= t)  # noqa: E731
    g = ok(gold)
    s = not g and ok(silver)
    b = not g and not s and ok(bronze)
    above = score < median if lower else score > median
    return {**out, "gold_medal": g, "silver_medal": s, "bronze_medal": b, "any_medal": g or s or b, "above_median": above}


# ---------------------------------------------------------------- the folders


def _board(best_first: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"scoreNullable": best_first, "teamId": np.arange(len(best_first)) + 1,
                         "hasTeamName": True, "submissionDate": "2024-01-01 00:00:00", "score": best_first})


def _write(root: Path, data: Path, cid: str, answers: pd.DataFrame, sample: pd.DataFrame, board: list[float],
           awards: bool = True, sample_name: str = "sample_submission.csv", with_id: bool = True) -> None:
    folder = root / cid
    folder.mkdir(parents=True)
    config = (f"id: {cid}\n" if with_id else "") + textwrap.dedent(f"""\
        name: {cid}
        competition_type: simple
        awards_medals: {str(awards).lower()}
        prizes: null
        description: mlebench/competitions/{cid}/description.md
        dataset:
          answers: {cid}/prepared/private/test.csv
          sample_submission: {cid}/prepared/public/{sample_name}
        grader:
          name: toy
          grade_fn: mlebench.competitions.{cid}.grade:grade
        preparer: mlebench.competitions.{cid}.prepare:prepare
        """)
    (folder / "config.yaml").write_text(config)
    (folder / "grade.py").write_text(textwrap.dedent(GRADERS[cid]))
    (folder / "prepare.py").write_text(PREPARE)
    (folder / "description.md").write_text(f"# {cid}\n")
    _board(board).to_csv(folder / "leaderboard.csv", index=False)
    public, private = data / cid / "prepared" / "public", data / cid / "prepared" / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    answers.to_csv(private / "test.csv", index=False)
    sample.to_csv(public / sample_name, index=False)
    answers.drop(columns=[c for c in answers.columns if c != "id"]).to_csv(public / "test.csv", index=False)
    (public / "description.md").write_text(f"# {cid}\n")


class Toys:
    """The four competitions, their answers and leaderboards, and the submissions of each case."""

    def __init__(self, root: Path) -> None:
        self.comps, self.data, self.subs = root / "competitions", root / "data", root / "subs"
        self.subs.mkdir(parents=True)
        rng = np.random.RandomState(7)
        self.boards: dict[str, list[float]] = {}
        self.cases: dict[str, tuple[str, Path, Optional[float]]] = {}  # case -> (competition, file, raw score)

        # accuracy, awards_medals false: 200 of 300 right is 0.6666..., below a 0.66667 gold threshold by 3.3e-6
        labels = np.where(rng.rand(300) > 0.5, "yes", "no")
        acc = pd.DataFrame({"id": [f"r{i:03d}" for i in range(300)], "label": labels})
        tie = round(200 / 300, 5)
        self.boards["toy-accuracy"] = [0.9, tie, 0.66, 0.65, 0.64, 0.63, 0.62, 0.61, 0.6, 0.59,
                                       0.58, 0.57, 0.56, 0.55, 0.54, 0.53, 0.52, 0.51, 0.505, 0.5]
        _write(self.comps, self.data, "toy-accuracy", acc, acc.assign(label="no"), self.boards["toy-accuracy"],
               awards=False, sample_name="sampleSubmission.csv", with_id=False)
        pred = acc.copy()
        flip = pred.index[200:]
        pred.loc[flip, "label"] = np.where(pred.loc[flip, "label"] == "yes", "no", "yes")
        self._case("accuracy-tie-gold", "toy-accuracy", pred, float(accuracy_score(acc["label"], pred["label"])))

        # ROC AUC: a score equal to the median; an extra column; shuffled rows
        y = (rng.rand(200) > 0.6).astype(int)
        auc_ans = pd.DataFrame({"id": np.arange(1000, 1200), "target": y})
        p = np.clip(y * 0.3 + rng.rand(200) * 0.8, 0, 1)
        auc = float(roc_auc_score(y, p))
        m = round(auc, 5)
        self.boards["toy-auroc"] = [float(x) for x in np.linspace(0.99, m + 0.01, 9)] + [m, m] + \
                                   [float(x) for x in np.linspace(m - 0.01, 0.5, 9)]
        _write(self.comps, self.data, "toy-auroc", auc_ans, auc_ans.assign(target=0.5), self.boards["toy-auroc"])
        sub = pd.DataFrame({"id": auc_ans["id"], "target": p})
        self._case("auroc-median", "toy-auroc", sub, auc)
        self._case("auroc-extra-column", "toy-auroc", sub.assign(note="x"), auc)
        self._case("auroc-shuffled", "toy-auroc", sub.sample(frac=1.0, random_state=3), auc)

        # RMSLE by position, lower is better: a grader exception, shuffled rows scored as they come
        truth = rng.rand(100) * 50 + 1
        rm_ans = pd.DataFrame({"id": np.arange(100), "y": truth})
        guess = truth * np.exp(rng.randn(100) * 0.2)
        self.boards["toy-rmsle"] = [float(x) for x in np.linspace(0.05, 1.5, N_TEAMS)]
        _write(self.comps, self.data, "toy-rmsle", rm_ans, rm_ans.assign(y=10.0), self.boards["toy-rmsle"])
        good = pd.DataFrame({"id": rm_ans["id"], "y": guess})
        self._case("rmsle", "toy-rmsle", good, float(np.sqrt(mean_squared_log_error(truth, guess))))
        shuffled = good.sample(frac=1.0, random_state=5)
        self._case("rmsle-shuffled", "toy-rmsle", shuffled, float(np.sqrt(mean_squared_log_error(truth, shuffled["y"]))))
        self._case("rmsle-grader-exception", "toy-rmsle", good.assign(y=-good["y"]), None)

        # 3-class log loss on one-hot answers, lower is better: an absent file, a non-CSV suffix
        k = rng.randint(0, 3, 150)
        onehot = pd.DataFrame(np.eye(3)[k].astype(int), columns=["cat", "dog", "bird"])
        ll_ans = pd.concat([pd.DataFrame({"id": [f"img{i}" for i in range(150)]}), onehot], axis=1)
        proba = np.eye(3)[k] * 0.6 + rng.dirichlet([1, 1, 1], 150) * 0.4
        self.boards["toy-logloss"] = [float(x) for x in np.linspace(0.1, 1.2, N_TEAMS)]
        _write(self.comps, self.data, "toy-logloss", ll_ans, ll_ans.assign(cat=1 / 3, dog=1 / 3, bird=1 / 3),
               self.boards["toy-logloss"])
        ll_sub = pd.concat([ll_ans[["id"]], pd.DataFrame(proba, columns=["cat", "dog", "bird"])], axis=1)
        self._case("logloss", "toy-logloss", ll_sub, float(log_loss(k, proba, labels=[0, 1, 2])))
        self.cases["logloss-absent"] = ("toy-logloss", self.subs / "absent.csv", None)
        parquet = self.subs / "logloss.parquet"
        ll_sub.to_parquet(parquet)
        self.cases["logloss-parquet"] = ("toy-logloss", parquet, None)
        self.settings = Settings(data_dir=self.data, competitions_path=(self.comps,), work_dir=root / "work")

    def _case(self, name: str, cid: str, df: pd.DataFrame, raw: Optional[float]) -> None:
        path = self.subs / f"{name}.csv"
        df.to_csv(path, index=False)
        self.cases[name] = (cid, path, raw)

    def board(self, cid: str) -> list[float]:
        """The leaderboard as mlebench reads it (plain `pd.read_csv`)."""
        return [float(x) for x in pd.read_csv(self.comps / cid / "leaderboard.csv")["score"]]

    def env(self) -> dict[str, str]:
        return {**os.environ, "HARNESS_DATA_DIR": str(self.data), "HARNESS_COMPETITIONS_PATH": str(self.comps),
                "PYTHONPATH": str(REPO), "COLUMNS": "400"}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> Toys:
    return Toys(tmp_path_factory.mktemp("grading"))


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "created_at"}


# ---------------------------------------------------------------- the rules


EXPECTED_FLAGS = {  # what each case must show, besides matching mlebench's numbers
    "accuracy-tie-gold": dict(gold_medal=True, valid_submission=True),
    "auroc-median": dict(above_median=False, any_medal=False, valid_submission=True),
    "auroc-extra-column": dict(valid_submission=True),
    "auroc-shuffled": dict(valid_submission=True),
    "rmsle": dict(valid_submission=True),
    "rmsle-shuffled": dict(valid_submission=True),
    "rmsle-grader-exception": dict(valid_submission=False, submission_exists=True),
    "logloss": dict(valid_submission=True),
    "logloss-absent": dict(valid_submission=False, submission_exists=False),
    "logloss-parquet": dict(valid_submission=False, submission_exists=False),
}


def test_every_case_is_graded_as_mlebench_grades_it(toys: Toys) -> None:
    before = _tree(toys.data)
    for case, (cid, path, raw) in toys.cases.items():
        report = mlebench_report(grade(cid, path, settings=toys.settings))
        assert list(report) == [*REPORT_KEYS, "invalid_reason"], case
        expected = _mlebench_expected(raw, toys.board(cid))
        assert {k: report[k] for k in expected} == expected, case
        assert {k: report[k] for k in EXPECTED_FLAGS[case]} == EXPECTED_FLAGS[case], case
        assert report["competition_id"] == cid and report["submission_path"] == str(path)
        assert (report["invalid_reason"] is None) == report["valid_submission"], case
    # nothing was written into, or deleted from, the hand-prepared data (no marker, no lock)
    assert _tree(toys.data) == before
    import harness

    assert harness.grade is grade


def test_the_edges_of_each_case(toys: Toys) -> None:
    g = lambda case: grade(toys.cases[case][0], toys.cases[case][1], settings=toys.settings)  # noqa: E731
    tie = g("accuracy-tie-gold")
    assert toys.cases["accuracy-tie-gold"][2] < tie.gold_threshold == tie.score  # misses before rounding, ties after
    assert tie.gold_medal and tie.any_medal and not tie.silver_medal  # although the config says awards_medals: false
    median = g("auroc-median")
    assert median.score == median.median_threshold and not median.above_median
    assert g("auroc-extra-column").score == g("auroc-shuffled").score == median.score
    assert g("rmsle-shuffled").score != g("rmsle").score  # by position: the grader, not harness, decides
    with pytest.raises(ValueError) as err:  # what scikit-learn says about negative predictions
        mean_squared_log_error(pd.read_csv(toys.data / "toy-rmsle/prepared/private/test.csv")["y"],
                               pd.read_csv(toys.cases["rmsle-grader-exception"][1])["y"])
    assert g("rmsle-grader-exception").invalid_reason == " ".join(str(err.value).split())
    assert g("logloss-parquet").invalid_reason == "logloss.parquet: a submission must be a .csv file"
    assert g("logloss-absent").score is None and g("logloss-absent").gold_threshold == toys.board("toy-logloss")[1]


def test_a_config_without_id_takes_the_folder_name_and_the_validator_finds_its_sample(toys: Toys) -> None:
    from harness.registry import load_registry
    from harness.spec import AttemptSpec, Resources
    from harness.validate import find_sample, sample_submission_env, sample_submission_name, validate

    comp = load_registry(toys.settings).competition("toy-accuracy")
    assert comp.id == "toy-accuracy" and sample_submission_name(comp) == "sampleSubmission.csv"
    a = AttemptSpec(run_id="r", attempt_id="toy-accuracy__d__s0", competition_id="toy-accuracy", agent_id="d", seed=0,
                    time_limit_s=1.0, resources=Resources.model_validate({}))
    assert sample_submission_env(a, toys.settings) == {"SAMPLE_SUBMISSION": "sampleSubmission.csv", "HARNESS_FORMAT_CHECK": "columns"}
    public = toys.data / "toy-accuracy" / "prepared" / "public"
    env = {**toys.env(), "DATA_DIR": str(public), "SAMPLE_SUBMISSION": "sampleSubmission.csv"}
    for sub, code in [(public / "sampleSubmission.csv", 0), (toys.cases["auroc-median"][1], 1)]:
        out = subprocess.run([sys.executable, "-m", "harness.validate", str(sub)], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == code, out.stdout + out.stderr
    assert find_sample(public) == public / "sampleSubmission.csv"
    # a folder with its own grader: columns the sample lacks are the grader's business
    extra = toys.subs / "sample-extra.csv"
    pd.read_csv(public / "sampleSubmission.csv").assign(note="x").to_csv(extra, index=False)
    assert validate(extra, public / "sampleSubmission.csv", extra_columns=True) is None
    assert "unexpected column(s) 'note'" in (validate(extra, public / "sampleSubmission.csv") or "")


def test_builtin_competitions_keep_their_strict_format_check(tmp_path: Path) -> None:
    from harness.data import ensure_prepared
    from harness.grading import grade_submission
    from harness.registry import load_registry

    settings = Settings(data_dir=tmp_path / "data", work_dir=tmp_path / "work")
    comp = load_registry(settings).competition("diabetes-progression")
    data = ensure_prepared(comp, settings)
    sample = pd.read_csv(data.sample_submission)
    extra = tmp_path / "extra.csv"
    sample.assign(note="x").to_csv(extra, index=False)
    report = grade_submission(comp, extra, data.answers, data.sample_submission)
    assert not report.valid_submission and "unexpected column(s) 'note'" in (report.invalid_reason or "")


def test_data_harness_did_not_write_is_never_deleted(tmp_path: Path) -> None:
    from harness.data import PrepareError, ensure_prepared
    from harness.registry import load_registry

    settings = Settings(data_dir=tmp_path / "data", work_dir=tmp_path / "work")
    comp = load_registry(settings).competition("diabetes-progression")
    mine = tmp_path / "data" / comp.id / "prepared" / "public" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("half of an mlebench prepare")
    with pytest.raises(PrepareError) as err:
        ensure_prepared(comp, settings)
    assert "neither harness's preparation nor a complete mlebench one" in str(err.value)
    assert mine.read_text() == "half of an mlebench prepare"


# ---------------------------------------------------------------- the commands


def test_grade_sample_prints_the_report(toys: Toys) -> None:
    for case in ("accuracy-tie-gold", "rmsle-grader-exception"):
        cid, path, _ = toys.cases[case]
        out = subprocess.run([sys.executable, "-m", "harness.cli", "grade-sample", str(path), cid, "--json"],
                             env=toys.env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        printed = json.loads(out.stdout)
        assert list(printed) == [*REPORT_KEYS, "invalid_reason"]
        assert _without_time(printed) == _without_time(mlebench_report(grade(cid, path, settings=toys.settings)))
    out = subprocess.run([sys.executable, "-m", "harness.cli", "grade-sample", str(path), "no-such-competition"],
                         env=toys.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "unknown competition" in out.stderr


def test_grade_writes_mlebench_aggregate_report(toys: Toys, tmp_path: Path) -> None:
    jsonl = tmp_path / "submissions.jsonl"
    lines = [json.dumps({"competition_id": cid, "submission_path": str(path)}) for cid, path, _ in toys.cases.values()]
    jsonl.write_text("# a comment, skipped as mlebench does\n" + "\n".join(lines) + "\n\n")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "grade", "--submissions", str(jsonl), "--output-dir",
                          str(tmp_path / "out")], env=toys.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stamped = list((tmp_path / "out").glob("*_grading_report.json"))
    assert len(stamped) == 1
    report = json.loads(stamped[0].read_text())
    assert report == json.loads((tmp_path / "out" / "grading_report.json").read_text())
    assert list(report) == AGG_KEYS
    expected = [mlebench_report(grade(cid, path, settings=toys.settings)) for cid, path, _ in toys.cases.values()]
    assert [_without_time(r) for r in report["competition_reports"]] == [_without_time(r) for r in expected]
    reports = report["competition_reports"]
    assert report["total_runs"] == len(toys.cases)
    assert report["total_runs_with_submissions"] == sum(r["submission_exists"] for r in reports) == len(toys.cases) - 2
    assert report["total_valid_submissions"] == sum(r["valid_submission"] for r in reports) == len(toys.cases) - 3
    assert report["total_gold_medals"] == sum(r["gold_medal"] for r in reports) >= 1
    assert report["total_medals"] == sum(r["any_medal"] for r in reports)
    assert report["total_above_median"] == sum(r["above_median"] for r in reports)
    # the same from Python
    again = grade_jsonl(jsonl, tmp_path / "py", settings=toys.settings)
    assert [_without_time(r) for r in json.loads(again.read_text())["competition_reports"]] == \
           [_without_time(r) for r in reports]


def test_post_grade_and_the_sdk(toys: Toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import uvicorn

    from harness.client import Client, HarnessAPIError
    from harness.serve.app import create_app
    from harness.serve.auth import TokenTable
    from harness.serve.service import RunService

    for key in ("HARNESS_DATA_DIR", "HARNESS_COMPETITIONS_PATH"):
        monkeypatch.setenv(key, toys.env()[key])
    server = uvicorn.Server(uvicorn.Config(create_app(RunService(str(tmp_path / "runs"), TokenTable(None))),
                                           host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        client = Client(f"http://127.0.0.1:{port}")
        for case in ("accuracy-tie-gold", "auroc-extra-column", "rmsle-grader-exception", "logloss-parquet"):
            cid, path, _ = toys.cases[case]
            got = client.grade(cid, path)
            want = mlebench_report(grade(cid, path, settings=toys.settings))
            assert _without_time(got) == {**_without_time(want), "submission_path": path.name}, case
        cid, path, _ = toys.cases["logloss"]
        raw = httpx.post(f"http://127.0.0.1:{port}/grade", params={"competition_id": cid}, content=path.read_bytes(),
                         headers={"content-type": "text/csv"})
        assert raw.status_code == 200 and raw.json()["score"] == round(toys.cases["logloss"][2], 5)
        assert set(raw.json()) == {*REPORT_KEYS, "invalid_reason"}  # the report only: no answers, no server paths
        with pytest.raises(HarnessAPIError) as err:
            client.grade("no-such-competition", path)
        assert err.value.status == 404 and "unknown competition" in str(err.value)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ---------------------------------------------------------------- a real run, regraded


@pytest.mark.slow
def test_a_run_writes_mlebench_reports_and_regrade_reproduces_it(ray_local: Any, toys: Toys, store: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import harness
    from harness.store import RunStore

    for key in ("HARNESS_DATA_DIR", "HARNESS_COMPETITIONS_PATH"):
        monkeypatch.setenv(key, toys.env()[key])
    before = _tree(toys.data / "toy-auroc")
    result = harness.run(competitions=["toy-auroc"], agent="dummy", seeds=2, store=store)
    assert list(result.attempts["status"]) == ["succeeded", "succeeded"]
    rs = RunStore(store, result.run_id)
    run_report = json.loads((rs.dir / "grading_report.json").read_text())
    assert list(run_report) == AGG_KEYS and run_report["total_runs"] == 2
    sample_auc = _mlebench_expected(0.5, toys.board("toy-auroc"))  # the dummy submits the constant sample
    for entry in run_report["competition_reports"]:
        assert list(entry)[:len(REPORT_KEYS)] == list(REPORT_KEYS)
        assert {k: entry[k] for k in sample_auc} == sample_auc
        on_disk = json.loads((rs.artifacts_dir(entry["attempt_id"]) / "competition_report.json").read_text())
        assert on_disk == entry
    rows = rs.attempts()

    # nothing changed: the rows come back exactly
    out = subprocess.run([sys.executable, "-m", "harness.cli", "regrade", result.run_id, "--store", str(store)],
                         env=toys.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pd.testing.assert_frame_equal(rs.attempts(), rows)
    kept = sorted(rs.dir.glob("attempts.*.parquet"))
    assert len(kept) == 1
    pd.testing.assert_frame_equal(pd.read_parquet(kept[0]), rows, check_dtype=False)

    # a new leaderboard: thresholds and medals change, the score and everything else do not
    new_board = [float(x) for x in np.linspace(0.6, 0.3, N_TEAMS)]
    _board(new_board).to_csv(toys.comps / "toy-auroc" / "leaderboard.csv", index=False)
    try:
        from harness.regrade import regrade
        from harness.tasks import registry_for

        registry_for.cache_clear()
        res = regrade(result.run_id, store=store)
        expected = _mlebench_expected(0.5, toys.board("toy-auroc"))
    finally:
        _board(toys.boards["toy-auroc"]).to_csv(toys.comps / "toy-auroc" / "leaderboard.csv", index=False)
    assert sorted(res.changed) == sorted(rows["attempt_id"])
    after = rs.attempts()
    for col in after.columns:
        if col in expected:
            assert list(after[col]) == [expected[col]] * 2, col
        elif col != "grade_seconds":
            assert after[col].equals(rows[col]), col
    assert list(after["score"]) == list(rows["score"])
    assert len(list(rs.dir.glob("attempts.*.parquet"))) == 2
    assert json.loads((rs.dir / "grading_report.json").read_text())["total_medals"] == int(expected["any_medal"]) * 2
    assert _tree(toys.data / "toy-auroc") == before  # the hand-prepared data served the run in place


def test_a_bad_jsonl_line_is_one_clear_error(tmp_path: Path) -> None:
    from harness.regrade import GradeInputError, read_submissions_jsonl

    bad = tmp_path / "subs.jsonl"
    for text, needle in [('{"competition_id": "x"}\n', "subs.jsonl:1: needs string fields"),
                         ('\n# c\n{not json\n', "subs.jsonl:3: not a JSON object")]:
        bad.write_text(text)
        with pytest.raises(GradeInputError) as err:
            read_submissions_jsonl(bad)
        assert needle in str(err.value) and "\n" not in str(err.value)
