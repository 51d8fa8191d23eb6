"""The docker sandbox beyond the shared suite: agent images (built once, sealed,
failing builds reported), what the container is given, GPU refusal, leftovers after
a crashed driver, and the same scores as the local sandbox on the lite split.

Runs against a real dockerd; skipped where none answers, failed instead with
HARNESS_REQUIRE_DOCKER=1 (the README's test command sets it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.sandbox.base import SandboxJob
from harness.spec import AgentConfig, Resources, RunSpec
from tests.conftest import need_docker
from tests.test_sandbox import AGENTS, make_job

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def docker_engine():  # noqa: ANN201
    need_docker()
    from harness.sandbox.docker.images import docker_client

    client = docker_client()
    yield client
    # nothing this test process started may outlive it
    mine = client.containers.list(all=True, filters={"label": f"harness.creator={socket.gethostname()}:{os.getpid()}"})
    assert mine == [], [c.name for c in mine]


@pytest.fixture(scope="module")
def ray_of_our_own(harness_dirs: dict):  # noqa: ANN201
    """Like conftest's ray_local, but a Ray of this process's own (address="local") even when
    another cluster runs on the machine; shared with later tests of the session."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    return ray


def sandbox():  # noqa: ANN201
    from harness.sandbox.docker import DockerSandbox

    return DockerSandbox()


def test_agent_image_is_built_once_and_sealed(tmp_path: Path, docker_engine) -> None:  # type: ignore[no-untyped-def]
    from harness.sandbox.docker.images import agent_image, base_image_tag

    job = make_job(tmp_path, "imaged")
    result = sandbox().run(job)
    assert result.status == "succeeded", (result, job.log_path.read_text())
    report = json.loads((job.logs_dir / "imaged.json").read_text())
    assert report["marker"] == "built into the agent image"
    assert report["sklearn_data"] == [], "the seal layer must empty the datasets the agent image brought back"
    assert report["uid"] != 0
    record = json.loads((job.logs_dir / "sandbox.json").read_text())
    assert record["image"].startswith("harness-agent:") and record["image"] != base_image_tag()
    # unchanged folder: the same tag, no build
    lines: list[str] = []
    assert agent_image(AGENTS / "imaged", docker_engine, log=lines.append) == record["image"]
    assert lines == []


def test_a_failing_image_build_is_an_infra_error_with_the_step_output(tmp_path: Path) -> None:
    job = make_job(tmp_path, "broken-image")
    result = sandbox().run(job)
    assert result.status == "infra_error", result
    assert "toolkit.tar.gz not found" in (result.error or "")
    log = job.log_path.read_text()
    assert "compiling the agent's toolkit" in log and "toolkit.tar.gz not found" in log


def test_the_container_gets_the_agents_limits_and_no_network(tmp_path: Path) -> None:
    from harness.sandbox.docker import _Scratch
    from harness.sandbox.docker.images import base_image_tag

    job = make_job(tmp_path, "probe", resources=Resources(cpus=1.5, memory_gb=0.5, pids=64, shm_gb=0.25))
    sandbox().attempt_init(job)
    scratch = _Scratch(tmp_path / "work" / "scratch" / "c", capped=False)
    config = sandbox()._container_config(job, base_image_tag(), scratch)
    assert config["network_mode"] == "none"
    assert config["mem_limit"] == config["memswap_limit"] == 512 * 1024**2
    assert config["nano_cpus"] == 1_500_000_000 and config["pids_limit"] == 64 and config["shm_size"] == 256 * 1024**2
    assert config["init"] is True and not config["user"].startswith("0:")
    assert config["labels"]["harness.attempt_id"] == job.attempt_id and config["labels"]["harness.run_id"] == job.run_id
    assert not config["device_requests"]
    mounts = {m["Target"]: m for m in config["mounts"]}
    assert mounts["/home/data"]["ReadOnly"] and mounts["/home/agent"]["ReadOnly"] and not mounts["/home/submission"]["ReadOnly"]
    assert all("private" not in m["Source"] for m in config["mounts"])
    # the writable dirs come from the scratch dir, not the store; the root filesystem is read-only
    assert mounts["/home/submission"]["Source"].startswith(str(scratch.home.resolve()))
    assert not any(m["Source"].startswith(str(job.attempt_dir.resolve())) for m in config["mounts"])
    assert config["read_only"] is True
    networked = SandboxJob(**{**job.model_dump(), "network": True})
    assert sandbox()._container_config(networked, base_image_tag(), scratch)["network_mode"] == "bridge"


def test_writable_dirs_are_a_capped_tmpfs_and_name_no_store_path(tmp_path: Path) -> None:
    """Run as root beside the engine (as in CI), /home/submission, /home/code and /home/logs are one tmpfs of
    resources.disk_gb mounted by harness in the work dir: the container's mountinfo names no store path,
    nothing outside them and /tmp is writable, and what the agent wrote still lands in the attempt dir."""
    script = textwrap.dedent("""
        grep -E ' /home/(submission|code|logs) ' /proc/self/mountinfo
        df -B1 --output=size /home/submission | tail -1 | tr -d ' ' > /home/logs/size.txt
        touch /should-fail 2>/dev/null && echo "root writable"
        echo done > /home/submission/out.txt
    """)
    job = make_job(tmp_path, "probe", command=["/bin/sh", "-c", script], resources=Resources(cpus=1, memory_gb=0.5, disk_gb=0.125),
                   scratch_dir=tmp_path / "work" / "scratch")
    result = sandbox().run(job)
    log = job.log_path.read_text()
    assert result.status == "succeeded", (result, log)
    assert "root writable" not in log and str(job.attempt_dir) not in log, log
    assert (job.submission_dir / "out.txt").read_text() == "done\n"
    assert not list((tmp_path / "work" / "scratch").iterdir())  # unmounted and removed
    if os.geteuid() == 0:
        assert int((job.logs_dir / "size.txt").read_text()) == int(0.125 * 1024**3), log
        assert log.count(" - tmpfs harness-scratch ") == 3, log


def test_validate_runs_inside_without_the_competitions(tmp_path: Path) -> None:
    from harness.tasks import VALIDATE_SCRIPT

    script = textwrap.dedent("""
        cp "$DATA_DIR/sample_submission.csv" "$SUBMISSION_DIR/submission.csv"
        /home/validate_submission.sh && python3 -m harness.validate
        echo "competitions: $(ls -A /opt/harness/harness/competitions | wc -l)"
        echo "uid: $(id -u)"
        cat /home/instructions.md
    """)
    job = make_job(tmp_path, "probe", command=["/bin/sh", "-c", script])
    job.attempt_dir.mkdir(parents=True)
    job.instructions_path.write_text("the instructions")
    (job.attempt_dir / ".validate_submission.sh").write_text(VALIDATE_SCRIPT)
    (job.attempt_dir / ".validate_submission.sh").chmod(0o755)
    result = sandbox().run(job)
    log = job.log_path.read_text()
    assert result.status == "succeeded", (result, log)
    assert log.count("Submission is valid.") == 2
    assert "competitions: 0" in log and "uid: 0\n" not in log and "the instructions" in log
    assert os.stat(job.submission_dir / "submission.csv").st_uid == os.getuid()  # handed back to harness's user


def test_gpus_asked_on_a_node_without_them_are_refused_before_start(tmp_path: Path, docker_engine) -> None:  # type: ignore[no-untyped-def]
    if list(Path("/dev").glob("nvidia[0-9]*")):
        pytest.skip("this node has GPUs")
    job = make_job(tmp_path, "probe", resources=Resources(gpus=1))
    result = sandbox().run(job)
    assert result.status == "infra_error" and "refused before start" in (result.error or ""), result
    assert not (job.logs_dir / "probe.json").exists()
    assert docker_engine.containers.list(all=True, filters={"label": f"harness.attempt_id={job.attempt_id}"}) == []


def test_sandbox_resolution_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.orchestrator import RunError, resolve_sandbox

    agent = AgentConfig(id="a", dir=AGENTS / "probe", command="true")
    assert resolve_sandbox(RunSpec(agent="a", sandbox="auto"), agent).sandbox == "docker"
    gpu_agent = AgentConfig(id="g", dir=AGENTS / "probe", command="true", resources=Resources(gpus=1))
    with pytest.raises(RunError, match="local sandbox gives none"):
        resolve_sandbox(RunSpec(agent="g", sandbox="local"), gpu_agent)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert resolve_sandbox(RunSpec(agent="a", sandbox="auto"), agent).sandbox == "local"
    with pytest.raises(RunError, match="--sandbox local"):
        resolve_sandbox(RunSpec(agent="a", sandbox="docker"), agent)


def test_a_crashed_drivers_container_is_removed_by_the_next_run(tmp_path: Path, docker_engine) -> None:  # type: ignore[no-untyped-def]
    """A process running an attempt is SIGKILLed mid-attempt (no cleanup runs); `collect_leftovers`,
    which every docker sandbox process runs once and `harness sandbox gc` runs, removes its container."""
    from harness.sandbox.docker import collect_leftovers

    attempt = f"crash-{os.getpid()}-{time.monotonic_ns()}"
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.test_sandbox import make_job
        from harness.sandbox.docker import DockerSandbox
        job = make_job(Path({str(tmp_path)!r}), "sleeper", attempt_id={attempt!r}, time_limit_s=300)
        DockerSandbox().run(job)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=REPO)
    label = {"label": f"harness.attempt_id={attempt}"}
    try:
        for _ in range(120):
            if docker_engine.containers.list(filters={**label, "status": "running"}):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the child never started its container")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert docker_engine.containers.list(all=True, filters=label), "the container should have outlived its driver"
    removed = collect_leftovers(docker_engine)
    assert any(attempt in name for name in removed), removed
    assert docker_engine.containers.list(all=True, filters=label) == []


def test_no_engine_is_one_actionable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.sandbox.docker import DockerSandbox

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    why = DockerSandbox.available()
    assert why and "\n" not in why and "--sandbox local" in why and "dockerd" in why


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["dummy", "baseline"])
def test_lite_split_scores_match_the_local_sandbox(ray_of_our_own, store: Path, agent: str) -> None:
    """The dummy on the whole lite split; the baseline (tens of seconds an attempt) on its image and
    its regression task, the two whose agents do the most: every score equal in both sandboxes."""
    import harness

    which = {"split": "lite"} if agent == "dummy" else {"competitions": ["digit-images", "diabetes-progression"], "lite": True}
    scores = {}
    for kind in ("local", "docker"):
        result = harness.run(**which, agent=agent, store=store, sandbox=kind)
        rows = result.attempts.set_index("competition_id").sort_index()
        assert (rows["status"] == "succeeded").all(), rows[["status", "error"]]
        assert (rows["sandbox"] == kind).all() and (rows["isolation"] == ("bwrap" if kind == "local" else "docker")).all()
        scores[kind] = rows["score"]
    assert len(scores["docker"]) >= 2
    assert scores["docker"].tolist() == pytest.approx(scores["local"].tolist(), rel=1e-9), scores


def test_an_mlebench_agent_folder_runs_unchanged(ray_of_our_own, store: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """mlebench's layout: a mapping of agent ids, `start` + `dockerfile` relative to the agents folder,
    argparse kwargs, a secret in env_vars, and a Dockerfile that puts the agent into /home/agent itself."""
    import harness

    folder = tmp_path / "agents" / "mleagent"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(textwrap.dedent("""
        mleagent:
          start: mleagent/start.sh
          dockerfile: mleagent/Dockerfile
          kwargs_type: argparse
          kwargs: {steps: 3}
          env_vars:
            GREETING: "${{ secrets.HARNESS_TEST_SECRET }}"
    """))
    (folder / "Dockerfile").write_text(textwrap.dedent("""
        ARG HARNESS_BASE=harness-base:latest
        FROM ${HARNESS_BASE}
        ARG AGENT_DIR
        USER root
        RUN mkdir -p ${AGENT_DIR}
        COPY start.sh agent.py ${AGENT_DIR}/
    """))
    (folder / "start.sh").write_text('echo "start.sh args: $*"\nexec python3 /home/agent/agent.py "$@"\n')
    (folder / "agent.py").write_text(textwrap.dedent("""
        import os, shutil, sys
        print("greeting:", os.environ["GREETING"], "argv:", sys.argv[1:])
        shutil.copyfile(os.path.join(os.environ["DATA_DIR"], "sample_submission.csv"),
                        os.path.join(os.environ["SUBMISSION_DIR"], "submission.csv"))
    """))
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(tmp_path / "agents"))
    monkeypatch.setenv("HARNESS_TEST_SECRET", "hello from the driver")
    result = harness.run(competitions=["breast-cancer-diagnosis"], agent="mleagent", store=store, sandbox="docker")
    row = result.attempts.iloc[0]
    log = (result.run_dir / row["artifacts_dir"] / "logs" / "agent.log").read_text()
    assert row["status"] == "succeeded" and row["valid_submission"], (row["error"], log)
    assert "start.sh args: --steps 3" in log and "greeting: hello from the driver" in log
