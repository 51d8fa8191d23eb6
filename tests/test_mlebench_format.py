"""Competitions in mlebench's own folder format, without the mlebench package: a folder
written here exactly as mlebench lays one out loads from HARNESS_COMPETITIONS_PATH,
prepares, grades (its grader imports mlebench's helpers) and earns medals by mlebench's
rule; the medal rule itself at 50, 150, 500 and 2000 teams; and a missing mlebench is a
one-line hint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data import ensure_prepared
from harness.grading import grade_submission, leaderboard_thresholds, medal_ranks
from harness.mlebench_adapter import mlebench_installed
from harness.registry import RegistryError, load_callable, load_registry
from harness.spec import Settings

REPO = Path(__file__).resolve().parent.parent
CID = "toy-spaceship"
N_TEAMS = 50

CONFIG = f"""\
id: {CID}
name: Toy Spaceship
competition_type: simple
awards_medals: true
prizes:
  - position: 1
    value: 1000
description: mlebench/competitions/{CID}/description.md

dataset:
  answers: {CID}/prepared/private/test.csv
  sample_submission: {CID}/prepared/public/sample_submission.csv

grader:
  name: accuracy
  grade_fn: mlebench.competitions.{CID}.grade:grade

preparer: mlebench.competitions.{CID}.prepare:prepare
"""

PREPARE = """\
from pathlib import Path

from sklearn.model_selection import train_test_split

from mlebench.utils import read_csv


def prepare(raw: Path, public: Path, private: Path):
    old_train = read_csv(raw / "train.csv")
    new_train, new_test = train_test_split(old_train, test_size=0.25, random_state=0)
    new_test_without_labels = new_test.drop(columns=["Transported"])
    new_train.to_csv(public / "train.csv", index=False)
    new_test.to_csv(private / "test.csv", index=False)
    new_test_without_labels.to_csv(public / "test.csv", index=False)
    sample = new_test[["PassengerId"]].copy()
    sample["Transported"] = False
    sample.to_csv(public / "sample_submission.csv", index=False)
"""

GRADE = """\
import pandas as pd
from sklearn.metrics import accuracy_score

from mlebench.competitions.utils import prepare_for_accuracy_metric
from mlebench.grade_helpers import InvalidSubmissionError


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    if "Transported" not in submission.columns:
        raise InvalidSubmissionError("Submission must have a `Transported` column")
    accuracy_inputs = prepare_for_accuracy_metric(
        submission=submission, answers=answers, target_column="Transported", id_column="PassengerId"
    )
    return accuracy_score(**accuracy_inputs)
"""


@pytest.fixture
def mle_folder(tmp_path: Path) -> tuple[Settings, Path]:
    """An mlebench-format competition folder on the competitions path, and its Kaggle
    download already unpacked in the data cache's raw folder (as mlebench leaves it)."""
    root = tmp_path / "competitions"
    folder = root / CID
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "prepare.py").write_text(PREPARE)
    (folder / "grade.py").write_text(GRADE)
    (folder / "description.md").write_text("# Toy Spaceship\n\nPredict `Transported`.\n")
    # 50 teams with accuracies 0.99, 0.98, ... 0.50, best first (mlebench's columns)
    scores = np.round(np.linspace(0.99, 0.50, N_TEAMS), 4)
    pd.DataFrame({"scoreNullable": scores, "teamId": np.arange(N_TEAMS) + 1000, "hasTeamName": True,
                  "submissionDate": "2024-01-01 00:00:00", "score": scores}).to_csv(folder / "leaderboard.csv", index=False)
    data = tmp_path / "data"
    raw = data / CID / "raw"
    raw.mkdir(parents=True)
    rng = np.random.RandomState(0)
    pd.DataFrame({"PassengerId": [f"{i:04d}_01" for i in range(400)], "Age": rng.randint(1, 80, 400),
                  "Transported": rng.rand(400) > 0.5}).to_csv(raw / "train.csv", index=False)
    return Settings(data_dir=data, competitions_path=(root,), work_dir=tmp_path / "work"), folder


def _submission(answers: pd.DataFrame, n_wrong: int) -> bytes:
    sub = answers[["PassengerId", "Transported"]].copy()
    sub.loc[sub.index[:n_wrong], "Transported"] = ~sub.loc[sub.index[:n_wrong], "Transported"].astype(bool)
    return sub.to_csv(index=False).encode()


@pytest.mark.skipif(mlebench_installed(), reason="checks the stand-in used when mlebench is absent")
def test_mlebench_folder_loads_prepares_grades_and_gets_medals(mle_folder: tuple[Settings, Path]) -> None:
    settings, folder = mle_folder
    reg = load_registry(settings)
    comp = reg.competition(CID)
    assert comp.source == "path" and comp.dir == folder and reg.problems == []
    data = ensure_prepared(comp, settings)
    assert data.answers == data.private / "test.csv" and data.answers.is_file()
    assert (data.public / "description.md").read_text().startswith("# Toy Spaceship")
    answers = pd.read_csv(data.answers)
    n = len(answers)  # 100 test rows: accuracy = 1 - n_wrong / 100
    assert n == 100
    # 50 teams: gold at rank 5 (0.95), silver at rank 10 (0.90), bronze at rank 20 (0.80), median 0.745
    expected = {0: "gold", 5: "gold", 6: "silver", 10: "silver", 11: "bronze", 20: "bronze", 21: None, 60: None}
    for n_wrong, medal in expected.items():
        r = grade_submission(comp, _submission(answers, n_wrong), data.answers, data.sample_submission)
        assert r.valid_submission, r.invalid_reason
        assert r.score == pytest.approx(1 - n_wrong / n)
        got = "gold" if r.gold_medal else "silver" if r.silver_medal else "bronze" if r.bronze_medal else None
        assert got == medal, (n_wrong, r)
        assert r.above_median == (r.score > 0.745)
        assert (r.gold_threshold, r.silver_threshold, r.bronze_threshold) == pytest.approx((0.95, 0.90, 0.80), abs=1e-9)
        assert r.median_threshold == pytest.approx(0.745) and r.is_lower_better is False
    sample = grade_submission(comp, data.sample_submission, data.answers, data.sample_submission)
    assert sample.valid_submission and not sample.any_medal


@pytest.mark.skipif(mlebench_installed(), reason="checks the stand-in used when mlebench is absent")
def test_mlebench_graders_invalid_submission_error_is_an_invalid_submission(mle_folder: tuple[Settings, Path]) -> None:
    settings, _ = mle_folder
    comp = load_registry(settings).competition(CID)
    data = ensure_prepared(comp, settings)
    grade = load_callable(comp.dir, comp.grader["grade_fn"], "grader.grade_fn")
    answers = pd.read_csv(data.answers)
    with pytest.raises(Exception) as err:  # raised by the folder's own grade.py, via the stand-in class
        grade(answers.drop(columns=["Transported"]), answers)
    assert type(err.value).__name__ == "InvalidSubmissionError"
    # through harness without the sample-submission check: the grader's own reason comes back
    bad = answers[["PassengerId"]].assign(Other=1).to_csv(index=False).encode()
    report = grade_submission(comp, bad, data.answers)
    assert not report.valid_submission and report.invalid_reason == "Submission must have a `Transported` column"
    short = answers.iloc[1:][["PassengerId", "Transported"]].to_csv(index=False).encode()
    report = grade_submission(comp, short, data.answers)
    assert not report.valid_submission and "rows" in report.invalid_reason


def _rule(n: int) -> tuple[int, int, int]:
    """mlebench's medal rule, written out from its definition (DESIGN §5)."""
    if n < 100:
        return max(1, int(0.1 * n)), max(1, int(0.2 * n)), max(1, int(0.4 * n))
    if n < 250:
        return 10, int(0.2 * n), int(0.4 * n)
    if n < 1000:
        return 10 + int(0.002 * n), 50, 100
    return 10 + int(0.002 * n), int(0.05 * n), int(0.1 * n)


@pytest.mark.parametrize("teams, ranks", [(50, (5, 10, 20)), (150, (10, 30, 60)), (500, (11, 50, 100)), (2000, (14, 100, 200))])
@pytest.mark.parametrize("lower_is_better", [False, True])
def test_medal_thresholds_follow_the_mlebench_rule(teams: int, ranks: tuple[int, int, int], lower_is_better: bool) -> None:
    assert medal_ranks(teams) == ranks == _rule(teams)
    rng = np.random.RandomState(teams)
    scores = rng.permutation(np.arange(1, teams + 1) * 0.5)  # distinct scores, in no order
    best_first = np.sort(scores) if lower_is_better else np.sort(scores)[::-1]
    t = leaderboard_thresholds(pd.Series(best_first))
    assert t.lower_is_better is lower_is_better
    assert (t.gold, t.silver, t.bronze) == tuple(float(best_first[r - 1]) for r in ranks)
    assert t.median == float(np.median(scores))


@pytest.mark.skipif(mlebench_installed(), reason="the hint is for when mlebench is absent")
def test_missing_mlebench_is_a_one_line_hint(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_DATA_DIR": str(tmp_path / "data"), "HARNESS_COMPETITIONS_PATH": ""}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "prepare", "-c", "spaceship-titanic"],
                         capture_output=True, text=True, cwd=REPO, env={**env, "COLUMNS": "400"}, timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "unknown competition 'spaceship-titanic'" in lines[0] and "mlebench is not installed" in lines[0]


@pytest.mark.skipif(mlebench_installed(), reason="the hint is for when mlebench is absent")
def test_a_folder_needing_more_of_mlebench_is_a_one_line_hint(mle_folder: tuple[Settings, Path]) -> None:
    settings, folder = mle_folder
    (folder / "grade.py").write_text(textwrap.dedent("""\
        from mlebench.metrics import map_at_k

        def grade(submission, answers):
            return map_at_k(submission, answers)
        """))
    comp = load_registry(settings).competition(CID)
    with pytest.raises(RegistryError) as err:
        load_callable(comp.dir, comp.grader["grade_fn"], "grader.grade_fn")
    msg = str(err.value)
    assert "\n" not in msg and "grade.py imports 'mlebench.metrics'" in msg and "mlebench is not installed" in msg


def test_without_mlebench_its_competitions_are_not_listed() -> None:
    reg = load_registry(Settings(data_dir=Path("/nonexistent"), work_dir=Path("/nonexistent")))
    sources = {c.source for c in reg.competitions.values()}
    assert ("mlebench" in sources) == mlebench_installed()


def test_thresholds_come_in_file_order_and_the_score_is_rounded_first() -> None:
    """mlebench takes the scores at the medal positions as the file lists them (never re-sorted),
    the direction from the first and last rows, and compares round(score, 5)."""
    from harness.grading import rank_score

    board = pd.Series([0.10, 0.30, 0.20, 0.40, 0.50, 0.45, 0.60, 0.70, 0.80, 0.90])  # lower is better, not sorted
    t = leaderboard_thresholds(board)
    assert t.lower_is_better and (t.gold, t.silver, t.bronze) == (0.10, 0.30, 0.40)  # positions 1, 2, 4
    assert t.median == float(board.median())
    tie = rank_score(round(0.3000049, 5), t)  # 0.3000049 misses silver (<= 0.30) before rounding, ties after
    assert tie["silver_medal"] and tie["any_medal"] and not tie["gold_medal"]
    median = rank_score(t.median, t)
    assert not median["above_median"] and rank_score(t.median - 1e-5, t)["above_median"]
    assert rank_score(None, t) == dict(gold_medal=False, silver_medal=False, bronze_medal=False, any_medal=False, above_median=False)
