"""Graders run where the attempt ran: an engineering task's grader executes the agent's
script in the attempt's sandbox backend (a container in a `--sandbox docker` run, bubblewrap
in a local one), never in bubblewrap regardless. Runs against a real dockerd; skipped where
none answers, failed instead with HARNESS_REQUIRE_DOCKER=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import technique as T
from harness.spec import Settings
from tests.conftest import need_docker

#: the agent's "baseline.py": names the grading sandbox's pid 1 (docker-init in a container,
#: bwrap in the local sandbox) and fails, so the grade's reason carries that name
PROBE = b"""import sys
cmd = open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode()
print('grader pid 1:', cmd.rsplit('/', 1)[-1])
sys.exit(3)
"""


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    need_docker()


@pytest.fixture(scope="module")
def settings(harness_dirs: dict[str, Path]) -> Settings:
    return Settings.from_env()


def test_the_grader_runs_the_agents_script_in_the_backend_it_is_given(settings: Settings) -> None:
    d = T.ensure_task_prepared("baseline-model", None, settings, lite=True)
    scratch = settings.work_dir / "grading"
    docker = T.grade_outputs("baseline-model", d.public, d.private, {"baseline.py": PROBE}, scratch, sandbox="docker")
    assert docker.invalid_reason and docker.invalid_reason.endswith("grader pid 1: docker-init"), docker.invalid_reason
    local = T.grade_outputs("baseline-model", d.public, d.private, {"baseline.py": PROBE}, scratch, sandbox="local")
    assert local.invalid_reason and "docker-init" not in local.invalid_reason and "exit 3" in local.invalid_reason
    # the reference solution, graded in a container, reads the data and writes its predictions there
    ref = T.grade_outputs("baseline-model", d.public, d.private, T.load_task("baseline-model").reference_outputs(d.public, d.private),
                          scratch, sandbox="docker")
    assert ref.invalid_reason is None and ref.score >= 0.9, [c for c in ref.checks if not c.passed]
    with pytest.raises(ValueError, match="unknown sandbox 'nowhere'"):
        T.grade_outputs("baseline-model", d.public, d.private, {"baseline.py": PROBE}, scratch, sandbox="nowhere")


@pytest.mark.slow
def test_a_docker_runs_engineering_grader_runs_the_script_in_docker(ray_local, store: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import harness

    agent = tmp_path / "agents" / "gradeprobe"
    agent.mkdir(parents=True)
    (agent / "baseline.py").write_bytes(PROBE)
    (agent / "config.yaml").write_text('command: cp baseline.py "$SUBMISSION_DIR/"\nresources: {cpus: 1, memory_gb: 1}\n'
                                       "time_limit_s: 120\n")
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(tmp_path / "agents"))
    result = harness.run(agent="gradeprobe", engineering_tasks=["baseline-model"], lite=True, store=store, sandbox="docker")
    row = result.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["sandbox"] == "docker" and row["isolation"] == "docker", row["error"]
    assert row["invalid_reason"].endswith("grader pid 1: docker-init"), row["invalid_reason"]
