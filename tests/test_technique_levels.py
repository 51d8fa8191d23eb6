"""Technique tasks at every level (easy, medium, hard): each grader separates the reference solution
(>= 0.9), a plausible-but-wrong one (strictly between 0.05 and 0.85, every lost point explained) and an
empty or malformed output (0, with a one-line reason); planting is deterministic; ids, reports and the
technique_grades table carry the level. Graders run directly on files (no Ray), on generated data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from harness import technique as T
from harness.registry import RegistryError
from harness.spec import Resources, RunSpec, technique_level_of
from harness.techniques import PrepareContext, synthetic_source

TECHNIQUES = ["imbalance", "missing", "encoding", "cv", "scaling", "leakage", "covariate-shift", "outliers", "label-noise",
              "calibration"]
CASES = [(name, level) for name in TECHNIQUES for level in T.LEVELS]


def _prepare(name: str, level: str, root: Path, seed: int = 12345) -> tuple[Path, Path]:
    public, private = root / "public", root / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    T.load_task(name).prepare(PrepareContext(task=name, task_id=f"{name}.{level}.synthetic", seed=seed, lite=True,
                                             public=public, private=private, source=synthetic_source(seed, True),
                                             level=level))
    return public, private


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("levels")
    return {(n, lv): _prepare(n, lv, root / n / lv) for n, lv in CASES}


def _grade(name: str, dirs: tuple[Path, Path], outputs: dict[str, bytes], scratch: Path):  # type: ignore[no-untyped-def]
    return T.grade_outputs(name, dirs[0], dirs[1], outputs, scratch)


def test_every_technique_has_three_levels() -> None:
    assert [t.name for t in T.available_tasks() if t.kind == "technique"] == TECHNIQUES
    for name in TECHNIQUES:
        assert T.task_levels(name, "all") == ["easy", "medium", "hard"] and T.task_levels(name, "hard") == ["hard"]
    assert T.task_levels("ml-spec", "all") == ["easy"]
    with pytest.raises(RegistryError, match="unknown technique level 'extreme'"):
        T.task_levels("cv", "extreme")


@pytest.mark.parametrize("name, level", CASES)
def test_reference_wrong_empty_malformed(name: str, level: str, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dirs = prepared[(name, level)]
    mod = T.load_task(name)
    out = mod.OUTPUT
    ref = _grade(name, dirs, mod.reference_outputs(*dirs), tmp_path)
    assert ref.invalid_reason is None and ref.score >= 0.9, [c for c in ref.checks if not c.passed]
    wrong = _grade(name, dirs, mod.wrong_outputs(*dirs), tmp_path)
    assert wrong.invalid_reason is None and 0.05 < wrong.score < 0.85, (wrong.score, wrong.checks)
    lost = [c for c in wrong.checks if not c.passed]
    assert lost and all(c.detail and c.detail != "ok" for c in lost)
    for outputs, why in [({}, f"no {out}"), ({out: b""}, "is empty"), ({out: b"[1, 2"}, "not valid JSON"),
                         ({out: b'{"unexpected": 1}'}, "violates the schema")]:
        g = _grade(name, dirs, outputs, tmp_path)
        assert g.score == 0.0 and why in (g.invalid_reason or "") and "\n" not in (g.invalid_reason or ""), (why, g)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", TECHNIQUES)
def test_planting_is_deterministic(name: str, prepared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    public, private = prepared[(name, "hard")]
    again = _prepare(name, "hard", tmp_path / "again")
    assert _digest(again[0]) == _digest(public) and _digest(again[1]) == _digest(private)
    other = _prepare(name, "hard", tmp_path / "other", seed=999)
    assert _digest(other[1]) != _digest(private)  # another seed plants another truth


def test_levels_differ_and_the_instructions_say_so(prepared) -> None:  # type: ignore[no-untyped-def]
    from harness.techniques import read_manifest

    for name in TECHNIQUES:
        truths = {lv: (prepared[(name, lv)][1] / "truth.json").read_text() for lv in T.LEVELS}
        assert len(set(truths.values())) == 3, name
        assert [read_manifest(prepared[(name, lv)][0]).level for lv in T.LEVELS] == list(T.LEVELS)
    text = T.render_instructions("missing", "missing.hard.synthetic", "synthetic", prepared[("missing", "hard")][0], 60, 1, 2)
    assert "placeholder number" in text and "$level_notes" not in text
    easy = T.render_instructions("missing", "missing.easy.synthetic", "synthetic", prepared[("missing", "easy")][0], 60, 1, 2)
    assert "$level_notes" not in easy and "placeholder" not in easy


def test_plan_ids_carry_the_level() -> None:
    spec = RunSpec(competitions=["breast-cancer-diagnosis"], agent="baseline", technique_tasks=["cv", "calibration"],
                   engineering_tasks=["ml-spec"], technique_level="all", lite=True)
    attempts = T.plan_technique_attempts(spec, dict(run_id="r", agent_id="baseline", lite=True, sandbox="local",
                                                    time_limit_s=60.0, resources=Resources()))
    assert [a.attempt_id for a in attempts] == [
        "cv.easy.breast-cancer-diagnosis__baseline__s0", "cv.medium.breast-cancer-diagnosis__baseline__s0",
        "cv.hard.breast-cancer-diagnosis__baseline__s0", "calibration.easy.synthetic__baseline__s0",
        "calibration.medium.synthetic__baseline__s0", "calibration.hard.synthetic__baseline__s0", "ml-spec__baseline__s0"]
    assert [technique_level_of(a.attempt_id) for a in attempts] == ["easy", "medium", "hard"] * 2 + [None]
    assert [a.technique_level for a in attempts] == ["easy", "medium", "hard"] * 2 + [None]
    hard = spec.model_copy(update={"technique_level": "hard"})
    assert len(T.plan_technique_attempts(hard, dict(run_id="r", agent_id="baseline", lite=True, sandbox="local",
                                                    time_limit_s=60.0, resources=Resources()))) == 3


def test_applies_to_picks_techniques_per_kind_of_data() -> None:
    lite = ["breast-cancer-diagnosis", "diabetes-progression", "digit-images", "italy-power-demand"]
    assert T.task_sources("imbalance", lite) == ["breast-cancer-diagnosis", "digit-images", "italy-power-demand"]
    assert T.task_sources("encoding", lite) == ["breast-cancer-diagnosis", "diabetes-progression"]  # tables only
    assert "italy-power-demand" in T.task_sources("cv", lite) and "digit-images" not in T.task_sources("cv", lite)
    assert T.task_sources("calibration", lite) == ["synthetic"]


def test_grades_and_summary_keep_the_level(tmp_path: Path) -> None:
    import datetime as dt

    from harness.report import summarize
    from harness.spec import AttemptResult, CheckResult, RunState
    from harness.store import RunStore

    rs = RunStore(tmp_path, "run-1")
    rows = []
    for aid, score in [("cv.easy.synthetic__baseline__s0", 1.0), ("cv.hard.synthetic__baseline__s0", 0.25),
                       ("ml-spec__baseline__s0", 0.5)]:
        row = AttemptResult(run_id="run-1", attempt_id=aid, task_kind="technique", competition_id="synthetic",
                            technique=aid.split(".")[0].split("__")[0], agent_id="baseline", seed=0, sandbox="local",
                            isolation="none", status="succeeded", score=score, started_at=dt.datetime.now(dt.timezone.utc))
        rs.write_attempt(row, [CheckResult(check="c", points=score, max_points=1, passed=score == 1)])
        rows.append(row)
    grades = rs.technique_grades()
    assert dict(zip(grades["attempt_id"], grades["level"].fillna("-"), strict=True)) == {
        "cv.easy.synthetic__baseline__s0": "easy", "cv.hard.synthetic__baseline__s0": "hard", "ml-spec__baseline__s0": "-"}
    rs.compact()
    assert set(pd.read_parquet(rs.dir / "technique_grades.parquet")["level"].dropna()) == {"easy", "hard"}
    spec = RunSpec(agent="baseline", technique_tasks=["cv"], engineering_tasks=["ml-spec"])
    s = summarize(RunState(run_id="run-1", spec=spec), rs.attempts(), grades)
    assert [(t.technique, t.level, t.score_mean) for t in s.techniques] == [
        ("cv", "easy", 1.0), ("cv", "hard", 0.25), ("ml-spec", None, 0.5)]
