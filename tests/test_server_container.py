"""The benchmark box: Dockerfile.server built (once per content hash), run as the seed runs it
(a host runs/ volume, a tokens file, port 8000 of the container published), driven from the
host with the seed's SDK calls through a full dummy lite run; the results are in the host's runs/.

Needs a Docker engine and the base image; skipped without them unless HARNESS_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness.registry import read_competition_set
from tests.procs import free_port

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow, pytest.mark.docker]

TOKEN = "box-user-token-01"
BWRAP_FLAGS = ["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
               "--security-opt", "systempaths=unconfined"]


def _docker() -> Any:
    from harness.sandbox.docker.images import docker_client, engine_unavailable, image_exists

    why = engine_unavailable()
    if why is None and not image_exists(docker_client(), "harness-base:latest"):
        why = "the base image harness-base:latest is not built (harness images build)"
    if why:
        if os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
            pytest.fail(f"docker is required here but unavailable: {why}")
        pytest.skip(why)
    return docker_client()


@pytest.fixture(scope="module")
def image() -> str:
    _docker()
    from harness.server_image import build_server_image

    return build_server_image(log=lambda line: None)


@pytest.fixture(scope="module")
def box(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    client = _docker()
    host = tmp_path_factory.mktemp("box")
    (host / "runs").mkdir()
    (host / "tokens.json").write_text(json.dumps({TOKEN: "alice"}))
    port = free_port()
    name = f"harness-box-test-{port}"
    # the README's command (the Docker SDK cannot say systempaths=unconfined), port on loopback only
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--label", "harness=test-server",
                    "-p", f"127.0.0.1:{port}:8000", "--shm-size", "512m",
                    "-v", f"{host / 'runs'}:/app/runs", "-v", f"{host / 'tokens.json'}:/app/tokens.json:ro",
                    *BWRAP_FLAGS, image], check=True, capture_output=True, text=True)
    container = client.containers.get(name)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            container.reload()
            assert container.status in ("created", "running"), container.logs().decode()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, container.logs().decode()[-3000:]
            time.sleep(1)
        yield {"url": url, "runs": host / "runs", "container": container}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)  # --rm may have removed it already


@pytest.mark.parametrize("flags", [[], BWRAP_FLAGS[:2] + BWRAP_FLAGS[4:]],  # the latter: all but --cap-add NET_ADMIN
                         ids=["no-flags", "no-net-admin"])
def test_without_the_flags_it_refuses_with_the_flags_to_add(image: str, flags: list[str]) -> None:
    """No flags, or all but NET_ADMIN (bubblewrap as root then cannot bring up the attempt's loopback):
    the container stops before serving and names the flags, rather than run agents unsandboxed."""
    _docker()
    name = f"harness-box-refusal-{free_port()}"
    try:
        proc = subprocess.run(["docker", "run", "--name", name, "--label", "harness=test-server", *flags, image],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "bubblewrap cannot create its namespaces" in proc.stderr and "--cap-add SYS_ADMIN --cap-add NET_ADMIN" in proc.stderr
        if flags:
            assert "RTM_NEWADDR" in proc.stderr  # bwrap's own reason, from the same probe attempts would fail
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_seed_demo_through_the_box(box: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_API_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    from sdk.client import Client

    client = Client(box["url"])
    print("Competitions:", client.list_competitions())
    run_id = client.run_lite_existing_tasks()
    result = client.wait_for_completion(run_id, timeout=600, poll_s=2)
    assert result["status"] == "completed", result
    summary = client.get_run_summary(run_id)
    low = read_competition_set("low")
    assert summary["files"] == sorted(f"{c}_metrics.json" for c in low) and summary["eval_dir"] == "eval"
    client.download_submission(run_id)
    client.download_metrics(run_id)
    assert sorted(p.name for p in (tmp_path / run_id / "eval").iterdir()) == summary["files"]
    assert [r["run_id"] for r in client.list_runs()] == [run_id]

    # the results are on the host, in the runs/ volume
    run_dir = box["runs"] / run_id
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    for c in low:
        host_metrics = json.loads((run_dir / "eval" / f"{c}_metrics.json").read_text())
        assert host_metrics["valid_submission_rate"] == 1.0
        assert (run_dir / "artifacts" / f"{c}__dummy__s0" / "submission" / "submission.csv").is_file()
    df = client.get_results(run_id)
    assert set(df["isolation"]) == {"bwrap"} and set(df["status"]) == {"succeeded"}

    # the docker sandbox is the mode this box does not offer: one clear line
    from harness import HarnessAPIError

    with pytest.raises(HarnessAPIError) as e:
        client.run(competitions=low[:1], agent_id="dummy", lite=True, sandbox="docker")
    assert e.value.status == 400 and "bubblewrap" in e.value.message and "sandbox='local'" in e.value.message
