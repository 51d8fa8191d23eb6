"""The built-in competition suite: offline, deterministic preparation; graders that agree
with scikit-learn and reject malformed submissions; leaderboards that the calibration
script reproduces; lite sizes with their own leaderboards; and a real lite run."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics

from harness.calibrate import calibrate
from harness.data import ensure_prepared
from harness.grading import competition_thresholds, grade_submission, leaderboard_thresholds
from harness.registry import load_callable, load_registry, read_competition_set
from harness.spec import Settings

REPO = Path(__file__).resolve().parent.parent
REG = load_registry(Settings(data_dir=Path("/nonexistent"), work_dir=Path("/nonexistent")))
# image-to-signal (ECG digitization) is generated, minutes to prepare in full: tests/test_ecg.py covers it
BUILTIN = sorted(c for c, cfg in REG.competitions.items() if cfg.source == "builtin" and cfg.kind != "image-to-signal")


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, work_dir=data_dir / "work")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One prepared cache for the module (each competition prepared once per size)."""
    return settings_for(tmp_path_factory.mktemp("competition-cache"))


# ---------------------------------------------------------------- the suite


def test_suite_covers_the_kinds_mlebench_covers() -> None:
    kinds = {REG.competitions[c].kind for c in BUILTIN}
    assert len(BUILTIN) >= 8
    for needed in ("tabular-binary", "tabular-multiclass", "tabular-regression", "image-classification",
                   "timeseries-binary", "timeseries-multiclass"):
        assert needed in kinds, f"no built-in competition of kind {needed}"
    assert set(read_competition_set("all")) == set(BUILTIN)
    assert read_competition_set("low") == read_competition_set("lite")
    for split in ("lite", "dev", "all"):
        assert set(read_competition_set(split)) <= set(BUILTIN)


@pytest.mark.parametrize("cid", BUILTIN)
def test_folder_is_complete_and_leaderboards_are_fields_of_30(cid: str) -> None:
    comp = REG.competitions[cid]
    cfg = yaml.safe_load((comp.dir / "config.yaml").read_text())
    for key in ("id", "name", "competition_type", "awards_medals", "description", "dataset", "grader", "preparer",
                "kind", "metric", "lower_is_better", "sizes"):
        assert key in cfg, f"{cid}: config.yaml lacks {key}"
    for name in ("prepare.py", "grade.py", "description.md", "leaderboard.csv", "leaderboard.lite.csv",
                 "checksums.yaml", "checksums.lite.yaml"):
        assert (comp.dir / name).is_file(), f"{cid}: {name} missing"
    for board_name in ("leaderboard.csv", "leaderboard.lite.csv"):
        board = pd.read_csv(comp.dir / board_name)
        assert len(board) >= 30 and board["teamName"].is_unique
        scores = board["score"].to_numpy()
        ordered = np.sort(scores) if comp.lower_is_better else np.sort(scores)[::-1]
        assert np.allclose(scores, ordered), f"{cid}/{board_name} is not sorted best first"
        assert scores.std() > 0


# ---------------------------------------------------------------- preparation


PREPARE_ALL = """
import json, sys
from pathlib import Path
from harness.data import ensure_prepared
from harness.registry import load_registry
from harness.spec import Settings
s = Settings(data_dir=Path(sys.argv[1]), work_dir=Path(sys.argv[1]) / "work")
reg = load_registry(s)
out = {}
for cid in sys.argv[2:]:
    for lite in (False, True):
        out[f"{cid}:{lite}"] = ensure_prepared(reg.competition(cid), s, lite).checksums
print(json.dumps(out))
"""


def _offline_prefix() -> list[str]:
    """Run without any network: a fresh network namespace (root) or bubblewrap."""
    for argv in (["unshare", "--net"], ["bwrap", "--dev-bind", "/", "/", "--unshare-net"]):
        if shutil.which(argv[0]) and subprocess.run(argv + ["true"], capture_output=True).returncode == 0:
            return argv
    pytest.skip("neither `unshare --net` nor bubblewrap can make a network-less process here")


def test_every_competition_prepares_offline_and_deterministically(tmp_path: Path, cache: Settings) -> None:
    """Prepared twice from clean caches (once with no network at all), both sizes: the same
    checksums, and the ones pinned in checksums[.lite].yaml (ensure_prepared checks them)."""
    offline = subprocess.run(_offline_prefix() + [sys.executable, "-c", PREPARE_ALL, str(tmp_path / "a"), *BUILTIN],
                             capture_output=True, text=True, cwd=REPO, timeout=600)
    assert offline.returncode == 0, offline.stderr[-2000:]
    first = json.loads(offline.stdout.strip().splitlines()[-1])
    for cid in BUILTIN:
        comp = REG.competitions[cid]
        for lite in (False, True):
            second = ensure_prepared(comp, cache, lite).checksums
            assert second == first[f"{cid}:{lite}"], f"{cid} lite={lite} differs between two preparations"
            pinned = yaml.safe_load((comp.dir / ("checksums.lite.yaml" if lite else "checksums.yaml")).read_text())
            assert pinned == second


def test_a_changed_preparation_is_a_clear_prepare_error(tmp_path: Path) -> None:
    from harness.data import PrepareError

    comp = REG.competitions["diabetes-progression"]
    folder = tmp_path / "diabetes-progression"
    shutil.copytree(comp.dir, folder)
    pinned = yaml.safe_load((folder / "checksums.yaml").read_text())
    pinned["private"]["answers.csv"] = "0" * 32
    (folder / "checksums.yaml").write_text(yaml.safe_dump(pinned))
    moved = comp.model_copy(update={"dir": folder})
    with pytest.raises(PrepareError, match=r"private/answers.csv has checksum [0-9a-f]{32}, checksums.yaml expects 0{32}"):
        ensure_prepared(moved, settings_for(tmp_path / "data"), lite=False)


def test_a_cached_preparation_by_another_preparer_is_made_again(tmp_path: Path) -> None:
    """A preparation in the cache whose recorded checksums are not the pinned ones (made by another
    version of the preparer) is prepared again, not reused: `harness calibrate` and grading never
    see data the current code would not make."""
    from harness.data import DONE_MARKER, PreparedData, prepared_data

    comp = REG.competitions["diabetes-progression"]
    settings = settings_for(tmp_path / "data")
    first = ensure_prepared(comp, settings, lite=False)
    marker = first.public.parent / DONE_MARKER
    old = PreparedData.model_validate_json(marker.read_text())
    old.checksums["private"]["answers.csv"] = "0" * 32  # as an older preparer would have left it
    marker.write_text(old.model_dump_json(indent=1))
    (first.public / "from-the-old-preparer.txt").write_text("stale")
    assert prepared_data(comp, settings, lite=False) is None
    again = ensure_prepared(comp, settings, lite=False)
    assert again.checksums == first.checksums and not (again.public / "from-the-old-preparer.txt").exists()
    assert prepared_data(comp, settings, lite=False) == again
    assert [p.name for p in again.public.parent.parent.iterdir() if p.name.startswith(".stale")] == []


@pytest.mark.parametrize("cid", BUILTIN)
@pytest.mark.parametrize("lite", [False, True], ids=["full", "lite"])
def test_sample_submission_is_valid_and_below_the_median(cid: str, lite: bool, cache: Settings) -> None:
    """The sample submission (what the dummy agent submits) grades as valid and earns nothing."""
    comp = REG.competitions[cid]
    data = ensure_prepared(comp, cache, lite)
    report = grade_submission(comp, data.sample_submission, data.answers, data.sample_submission, lite=lite)
    assert report.valid_submission, report.invalid_reason
    assert not report.above_median and not report.any_medal
    board = pd.read_csv(comp.dir / ("leaderboard.lite.csv" if lite else "leaderboard.csv"))
    assert report.median_threshold == pytest.approx(float(board["score"].median()))


def test_lite_attempts_use_the_lite_leaderboard() -> None:
    comp = REG.competitions["marital-affairs"]
    full, lite = competition_thresholds(comp), competition_thresholds(comp, lite=True)
    assert full == leaderboard_thresholds(pd.read_csv(comp.dir / "leaderboard.csv")["score"], True)
    assert lite == leaderboard_thresholds(pd.read_csv(comp.dir / "leaderboard.lite.csv")["score"], True)
    assert full != lite


# ---------------------------------------------------------------- graders vs scikit-learn


def _log_loss(y_true: np.ndarray, proba: np.ndarray, labels: list) -> float:
    # scikit-learn 1.9 renamed y_pred to y_proba; accept either
    if "y_proba" in inspect.signature(metrics.log_loss).parameters:
        return float(metrics.log_loss(y_true, y_proba=proba, labels=labels))
    return float(metrics.log_loss(y_true, proba, labels=labels))


def _random_case(cid: str, answers: pd.DataFrame, rng: np.random.RandomState) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(random answers, random submission in shuffled row order, scikit-learn's score)."""
    metric = REG.competitions[cid].metric
    n, cols = len(answers), list(answers.columns)
    ans = pd.DataFrame({"id": answers["id"].to_numpy()})
    sub = ans.copy()
    if metric == "roc_auc" or (metric == "log_loss" and len(cols) == 2):
        y, p = rng.randint(0, 2, n), rng.uniform(0.01, 0.99, n)
        ans[cols[1]], sub[cols[1]] = y, p
        expected = metrics.roc_auc_score(y, p) if metric == "roc_auc" else _log_loss(y, p, [0, 1])
    elif metric == "log_loss":
        k = len(cols) - 1
        y = rng.randint(0, k, n)
        p = rng.dirichlet(np.ones(k), n)
        for j, c in enumerate(cols[1:]):
            ans[c], sub[c] = (y == j).astype(int), p[:, j]
        expected = _log_loss(y, p, list(range(k)))
    elif metric in ("accuracy", "macro_f1"):
        classes = sorted(answers[cols[1]].unique())
        y, pred = rng.choice(classes, n), rng.choice(classes, n)
        ans[cols[1]], sub[cols[1]] = y, pred
        expected = metrics.accuracy_score(y, pred) if metric == "accuracy" else \
            metrics.f1_score(y, pred, average="macro", labels=classes, zero_division=0)
    else:
        y, pred = rng.normal(50, 20, n), rng.normal(50, 25, n)
        ans[cols[1]], sub[cols[1]] = y, pred
        expected = np.sqrt(metrics.mean_squared_error(y, pred)) if metric == "rmse" else metrics.mean_absolute_error(y, pred)
    return ans, sub.sample(frac=1.0, random_state=rng).reset_index(drop=True), float(expected)


@pytest.mark.parametrize("cid", BUILTIN)
def test_grader_agrees_with_scikit_learn(cid: str, cache: Settings) -> None:
    comp = REG.competitions[cid]
    grade = load_callable(comp.dir, comp.grader["grade_fn"], "grader")
    answers = pd.read_csv(ensure_prepared(comp, cache, lite=True).answers)
    rng = np.random.RandomState(0)
    for _ in range(5):
        ans, sub, expected = _random_case(cid, answers, rng)
        assert grade(sub, ans) == pytest.approx(expected, abs=1e-9, rel=0)
    perfect = grade(answers.copy(), answers)
    best = {"rmse": 0.0, "mae": 0.0, "log_loss": None}.get(comp.metric, 1.0)
    if best is not None:
        assert perfect == pytest.approx(best, abs=1e-9)


# ---------------------------------------------------------------- malformed submissions


def _malformed(answers: pd.DataFrame, cid: str) -> dict[str, tuple[pd.DataFrame, str]]:
    """name -> (submission, a word the reason must contain)."""
    ok = answers.copy()
    target = answers.columns[1]
    cases = {
        "missing ids": (ok.iloc[1:], "missing"),
        "extra ids": (pd.concat([ok, ok.iloc[[0]].assign(id=10**9)]), "unknown"),
        "duplicated ids": (pd.concat([ok.iloc[1:], ok.iloc[[1]]]), "duplicated"),
        "renamed column": (ok.rename(columns={target: target + "_x"}), "column"),
        "missing column": (ok.drop(columns=[target]), "missing column"),
        "NaN": (ok.assign(**{target: np.where(np.arange(len(ok)) == 0, np.nan, ok[target])}), "NaN"),
        "inf": (ok.assign(**{target: np.where(np.arange(len(ok)) == 0, np.inf, ok[target].astype(float))}), "infinite"),
        "text": (ok.assign(**{target: ["abc"] * len(ok)}), "numeric"),
    }
    metric = REG.competitions[cid].metric
    if metric in ("roc_auc", "log_loss"):
        cases["probability above 1"] = (ok.assign(**{target: 1.5}), "between 0 and 1")
    if metric in ("accuracy", "macro_f1"):
        cases["unknown class"] = (ok.assign(**{target: 99}), "not a class")
    return cases


@pytest.mark.parametrize("cid", BUILTIN)
def test_grader_rejects_malformed_submissions_with_a_reason(cid: str, cache: Settings) -> None:
    comp = REG.competitions[cid]
    grade = load_callable(comp.dir, comp.grader["grade_fn"], "grader")
    answers = pd.read_csv(ensure_prepared(comp, cache, lite=True).answers)
    for name, (sub, word) in _malformed(answers, cid).items():
        try:
            score = grade(sub, answers)
        except Exception as e:  # noqa: BLE001 - the class is checked by name, as grading.py does
            assert type(e).__name__ == "InvalidSubmissionError", f"{cid}/{name}: {e!r}"
            assert word.lower() in str(e).lower(), f"{cid}/{name}: reason {e}"
        else:
            pytest.fail(f"{cid}: the {name} submission was accepted with score {score}")


@pytest.mark.parametrize("cid", ["penguin-species", "digit-images"])
def test_grading_a_bad_file_gives_a_reason_not_an_exception(cid: str, cache: Settings) -> None:
    comp = REG.competitions[cid]
    data = ensure_prepared(comp, cache, lite=True)
    cases = {"no file": (None, "no submission.csv"), "binary": (b"\x89PNG\x00\x00\x01", "not a CSV"),
             "empty": (b"", "empty"), "header only": (b"id,x\n", "no rows"),
             "wrong columns": (b"a,b\n1,2\n", "missing column")}
    for name, (payload, words) in cases.items():
        report = grade_submission(comp, payload, data.answers, data.sample_submission, lite=True)
        assert not report.valid_submission and report.score is None, name
        assert words.lower() in (report.invalid_reason or "").lower(), f"{name}: {report.invalid_reason}"
        assert "\n" not in report.invalid_reason


# ---------------------------------------------------------------- leaderboards


def test_calibration_reproduces_the_lite_leaderboard(cache: Settings) -> None:
    """`harness calibrate` is the only source of leaderboards: rerunning it gives the same file
    (on a time-series competition, so the reference.py feature hook is exercised too)."""
    comp = REG.competitions["italy-power-demand"]
    board = calibrate(comp, cache, write=False, lite=True)
    stored = pd.read_csv(comp.dir / "leaderboard.lite.csv")
    assert list(board["teamName"]) == list(stored["teamName"])
    assert np.allclose(board["score"], stored["score"], rtol=1e-8, atol=1e-9)


def test_list_competitions_shows_kind_metric_sizes(harness_dirs: dict[str, Path]) -> None:
    env = {**os.environ, "COLUMNS": "220"}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list", "competitions"], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "digit-images" in line)
    for cell in ("builtin", "image-classification", "accuracy", "False", "1797/599", "1801/603"):
        assert cell in row, row
