"""Shared fixtures: a real local Ray for the whole session, and a private data
cache, run store and work dir per test session (so tests never touch ~/.cache or ./runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def harness_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """HARNESS_DATA_DIR / HARNESS_RUNS_DIR / HARNESS_WORK_DIR under one temp root, set for the session.
    The data cache is shared across the session so each competition is prepared once."""
    root = tmp_path_factory.mktemp("harness")
    dirs = {"data": root / "data", "runs": root / "runs", "work": root / "work"}
    for d in dirs.values():
        d.mkdir()
    os.environ["HARNESS_DATA_DIR"] = str(dirs["data"])
    os.environ["HARNESS_RUNS_DIR"] = str(dirs["runs"])
    os.environ["HARNESS_WORK_DIR"] = str(dirs["work"])
    return dirs


@pytest.fixture(scope="session")
def ray_local(harness_dirs: dict[str, Path]):  # noqa: ANN201
    """A real local Ray (2 CPUs), started once per test session after the env is set,
    so its workers inherit the test's HARNESS_* variables."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()


def docker_unavailable() -> str | None:
    """Why the docker sandbox cannot run here, or None."""
    try:
        from harness.sandbox.docker import DockerSandbox
    except ImportError as e:
        return f"docker sandbox not importable: {e}"
    return DockerSandbox.available()


def need_docker() -> None:
    """Skip the calling test without a usable Docker engine, or fail it where one is required
    (HARNESS_REQUIRE_DOCKER=1, as scripts/test.sh sets it once the engine is up)."""
    why = docker_unavailable()
    if why:
        if os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
            pytest.fail(f"docker is required here but unavailable: {why}")
        pytest.skip(why)


@pytest.fixture(params=["local", "docker"])
def sandbox_kind(request: pytest.FixtureRequest) -> str:
    """Each sandbox backend in turn (docker through `need_docker`)."""
    if request.param == "docker":
        need_docker()
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh run store for one test."""
    d = tmp_path / "runs"
    d.mkdir()
    return d


#: test files by their measured time at two workers, longest first (tests/ files not named here
#: follow in their own order): scripts/test.sh hands files to the xdist workers in this order
#: (--no-loadscope-reorder), so no long file is left to run alone at the end
LONGEST_FIRST = ["test_core", "test_ecg", "test_multinode", "test_chaos", "test_serve_life", "test_seed_sdk",
                 "test_package", "test_ui", "test_serve", "test_agent_upload", "test_hostile", "test_docker",
                 "test_technique_tasks", "test_server_container", "test_s3", "test_llm"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a file's tests keep their order
