"""Technique and engineering tasks: every grader separates a reference solution
(>= 0.9), a plausible-but-wrong one (in between) and an empty one (0, with a
reason); malformed outputs are graded 0 with a one-line reason; the in-sandbox
validator checks the schema; and one end-to-end run on real Ray and bubblewrap
puts the baseline well above the dummy."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import technique as T
from harness.registry import RegistryError
from harness.spec import RunSpec, Settings

TECHNIQUES = ["imbalance", "missing", "encoding", "cv", "scaling", "leakage", "covariate-shift", "outliers", "label-noise",
              "calibration"]
ENGINEERING = ["ml-spec", "eda-notebook", "feature-engineering", "baseline-model", "refactor-config", "eval-metrics",
               "model-comparison"]
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@pytest.fixture(scope="module")
def settings(harness_dirs: dict[str, Path]) -> Settings:
    return Settings.from_env()


def prepared(name: str, settings: Settings) -> T.PreparedTechnique:
    # technique tasks on a built-in competition's data (imbalance needs classification)
    source = "breast-cancer-diagnosis" if name in TECHNIQUES else None
    return T.ensure_task_prepared(name, source, settings, lite=True)


def grade(name: str, settings: Settings, outputs: dict[str, bytes]):  # type: ignore[no-untyped-def]
    d = prepared(name, settings)
    return T.grade_outputs(name, d.public, d.private, outputs, settings.work_dir / "grading")


def test_every_task_is_listed() -> None:
    names = [t.name for t in T.available_tasks()]
    assert names == TECHNIQUES + ENGINEERING
    assert all(line.split(" ", 1)[0] in names for line in T.list_tasks())


@pytest.mark.parametrize("name", TECHNIQUES + ENGINEERING)
def test_grader_separates_reference_wrong_and_empty(name: str, settings: Settings) -> None:
    d = prepared(name, settings)
    mod = T.load_task(name)
    ref = grade(name, settings, mod.reference_outputs(d.public, d.private))
    assert ref.invalid_reason is None and ref.score >= 0.9, [c for c in ref.checks if not c.passed]
    wrong = grade(name, settings, mod.wrong_outputs(d.public, d.private))
    assert wrong.invalid_reason is None
    assert 0.05 < wrong.score < 0.85, wrong.checks
    lost = [c for c in wrong.checks if not c.passed]
    assert lost and all(c.detail and c.detail != "ok" for c in lost)  # every lost point is explained
    empty = grade(name, settings, {})
    assert empty.score == 0.0 and empty.invalid_reason and "no " in empty.invalid_reason


@pytest.mark.parametrize("payload, why", [
    (b"{not json", "not valid JSON"),
    (b'{"target_column": "malignant", "class_counts": {"0": "many"}}', "violates the schema"),
    (b"", "empty"),
])
def test_malformed_json_scores_zero_with_one_line_reason(payload: bytes, why: str, settings: Settings) -> None:
    g = grade("imbalance", settings, {"imbalance_analysis.json": payload})
    assert g.score == 0.0 and why in (g.invalid_reason or "")
    assert "\n" not in g.invalid_reason and len(g.invalid_reason) < 300


def test_notebook_that_raises_scores_zero_with_one_line_reason(settings: Settings) -> None:
    from harness.techniques import new_notebook

    nb = new_notebook([("code", "import pandas as pd\ndf = pd.read_csv('/home/data/train.csv')"),
                       ("code", "raise ValueError('the data looks odd')")])
    g = grade("eda-notebook", settings, {"eda.ipynb": nb})
    assert g.score == 0.0
    assert g.invalid_reason and "ValueError: the data looks odd" in g.invalid_reason and "\n" not in g.invalid_reason
    g = grade("eda-notebook", settings, {"eda.ipynb": b"this is not a notebook"})
    assert g.score == 0.0 and "not a readable notebook" in (g.invalid_reason or "")


def test_script_that_crashes_scores_zero(settings: Settings) -> None:
    g = grade("baseline-model", settings, {"baseline.py": b"import pandas\nraise SystemExit('cannot find the data')\n"})
    assert g.score == 0.0 and "cannot find the data" in (g.invalid_reason or "")


def test_truth_stays_private(settings: Settings) -> None:
    for name in TECHNIQUES:
        d = prepared(name, settings)
        public = {p.name for p in d.public.iterdir()}
        assert "truth.json" not in public and (d.private / "truth.json").is_file()
        schema = json.loads((d.public / f"{name}_analysis.schema.json").read_text())
        assert schema["type"] == "object" and schema["required"]


def test_validator_checks_the_schema_without_scoring(settings: Settings, tmp_path: Path) -> None:
    from harness.validate import validate_technique

    d = prepared("scaling", settings)
    assert "no scaling_analysis.json" in (validate_technique(d.public, tmp_path) or "")
    (tmp_path / "scaling_analysis.json").write_text('{"features": "none"}')
    assert "violates the schema" in (validate_technique(d.public, tmp_path) or "")
    mod = T.load_task("scaling")
    (tmp_path / "scaling_analysis.json").write_bytes(mod.wrong_outputs(d.public, d.private)["scaling_analysis.json"])
    assert validate_technique(d.public, tmp_path) is None  # valid format, even though its answers are wrong


@pytest.mark.parametrize("backend", ["local", "docker"])
def test_the_validator_in_the_sandbox_reads_the_manifest_with_the_hosts_model(backend: str, settings: Settings,
                                                                              tmp_path: Path) -> None:
    """Inside either sandbox (task folders hidden; the docker base image has only what agents get),
    `python3 -m harness.validate` reads task.json with harness.techniques' `Manifest`: the missing
    output, then a well-formed one, then a manifest the model refuses (one line naming the field)."""
    from harness.sandbox.backends import get_sandbox
    from harness.sandbox.base import SandboxJob
    from harness.spec import Resources
    from tests.conftest import need_docker

    if backend == "docker":
        need_docker()

    d = prepared("scaling", settings)
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "out.json").write_bytes(T.load_task("scaling").wrong_outputs(d.public, d.private)["scaling_analysis.json"])
    bad = tmp_path / "bad"
    shutil.copytree(d.public, bad)
    (bad / "task.json").write_text(json.dumps({**json.loads((d.public / "task.json").read_text()), "outputs": "x.json"}))

    def validate_in_sandbox(data: Path, script: str) -> str:
        job = SandboxJob(run_id="t", attempt_id=f"validate-{data.name}", command=["/bin/sh", "-c", script], agent_dir=agent,
                         data_dir=data, attempt_dir=tmp_path / f"attempt-{data.name}", env={"HARNESS_TASK_KIND": "technique"},
                         resources=Resources(cpus=1, memory_gb=2), time_limit_s=120)
        get_sandbox(backend).run(job)
        # where jsonschema is not installed (the docker base image) the validator notes the unchecked schema
        return "".join(ln for ln in job.log_path.read_text().splitlines(keepends=True) if not ln.startswith("note: "))

    log = validate_in_sandbox(d.public, 'python3 -m harness.validate; echo "exit $?"; cp out.json "$SUBMISSION_DIR/scaling_analysis.json"; '
                                        'python3 -m harness.validate; echo "exit $?"')
    assert "Submission is invalid: no scaling_analysis.json in /home/submission\nexit 1\nSubmission is valid.\nexit 0" in log, log
    log = validate_in_sandbox(bad, 'python3 -m harness.validate; echo "exit $?"')
    assert "Submission is invalid: /home/data/task.json is not a task manifest: outputs: Input should be a valid array" in log and "exit 1" in log, log
    assert "Traceback" not in log


def test_selection_and_planning(settings: Settings) -> None:
    assert T.expand_task_selection(True, ()) == (TECHNIQUES, [])
    assert T.expand_task_selection("cv,imbalance", "all") == (["imbalance", "cv"], ENGINEERING)
    assert T.expand_task_selection(["ml-spec", "leakage"], []) == (["leakage"], ["ml-spec"])
    with pytest.raises(RegistryError, match="unknown technique task 'imbalanse'"):
        T.validate_task_names(["imbalanse"], [])
    spec = RunSpec(competitions=["breast-cancer-diagnosis", "diabetes-progression"], agent="baseline", seeds=2,
                   technique_tasks=["imbalance", "cv"], engineering_tasks=["ml-spec"], lite=True)
    from harness.spec import Resources

    attempts = T.plan_technique_attempts(spec, dict(run_id="r", agent_id="baseline", lite=True, sandbox="local",
                                                    time_limit_s=60.0, resources=Resources()))
    ids = [a.attempt_id for a in attempts]
    assert ids == [
        "imbalance.easy.breast-cancer-diagnosis__baseline__s0", "imbalance.easy.breast-cancer-diagnosis__baseline__s1",
        "cv.easy.breast-cancer-diagnosis__baseline__s0", "cv.easy.breast-cancer-diagnosis__baseline__s1",
        "cv.easy.diabetes-progression__baseline__s0", "cv.easy.diabetes-progression__baseline__s1",
        "ml-spec__baseline__s0", "ml-spec__baseline__s1",
    ]  # no imbalance on the regression
    assert all(SAFE_ID.match(i) and a.task_kind == "technique" and a.technique for i, a in zip(ids, attempts, strict=True))
    assert {a.competition_id for a in attempts} == {"breast-cancer-diagnosis", "diabetes-progression", "ml-spec"}
    assert T.task_sources("imbalance", ["diabetes-progression"]) == ["synthetic"]  # nothing applicable: generated data


@pytest.mark.slow
def test_end_to_end_baseline_beats_dummy(ray_local, store: Path) -> None:  # type: ignore[no-untyped-def]
    import harness
    from harness.store import RunStore

    means = {}
    for agent in ("baseline", "dummy"):
        result = harness.run(["breast-cancer-diagnosis"], agent=agent, lite=True, store=store,
                             technique_tasks=["imbalance", "leakage"], engineering_tasks=["ml-spec"])
        df = result.attempts
        assert result.status == "completed" and len(df) == 3
        assert set(df["task_kind"]) == {"technique"} and set(df["technique"]) == {"imbalance", "leakage", "ml-spec"}
        assert set(df["status"]) == {"succeeded"} and set(df["isolation"]) <= {"bwrap", "none"}
        grades = RunStore(store, result.run_id).technique_grades()
        assert set(grades["attempt_id"]) == set(df["attempt_id"])
        means[agent] = float(df["score"].mean())
        if agent == "dummy":
            assert not df["valid_submission"].any() and df["invalid_reason"].notna().all()
    assert means["baseline"] >= 0.8 and means["dummy"] <= 0.1, means
