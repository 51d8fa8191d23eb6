"""`ray job submit` to a started Ray cluster (a real head node on this machine):
the job runs `harness run` as its entrypoint, connects to the cluster through
RAY_ADDRESS, and lands its rows in the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import RunStore, list_runs
from tests.procs import free_port, kill_family

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture
def ray_head(tmp_path: Path, harness_dirs: dict):  # noqa: ANN201
    """`ray start --head --block`, owned by this test (stopped through its own PID, never `ray stop`)."""
    gcs, dash = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={gcs}", "--num-cpus=2",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
                             # its own agent port: the default (52365) belongs to any other Ray on this machine
                             f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                             "--disable-usage-stats"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        probe = subprocess.run([RAY, "job", "list", "--address", address], env=env, capture_output=True, text=True)
        if probe.returncode == 0:
            break
        if head.poll() is not None:
            raise AssertionError("ray head exited:\n" + (tmp_path / "head.log").read_text()[-3000:])
        time.sleep(1)
    else:
        raise AssertionError("the job server never answered:\n" + (tmp_path / "head.log").read_text()[-3000:])
    yield address, env
    kill_family(head.pid)
    head.wait()


def test_ray_job_submit_runs_harness_on_the_cluster(ray_head, tmp_path: Path) -> None:
    address, env = ray_head
    store = tmp_path / "store"
    proc = subprocess.run(
        [RAY, "job", "submit", "--address", address, "--", "harness", "run", "-c", "diabetes-progression",
         "--agent", "dummy", "--seeds", "2", "--store", str(store), "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout
    runs = list_runs(store)
    assert len(runs) == 1 and runs[0].status == "completed"
    rows = RunStore(store, runs[0].run_id).attempts()
    assert len(rows) == 2 and (rows["status"] == "succeeded").all() and rows["valid_submission"].all()
    summary = json.loads((store / runs[0].run_id / "summary.json").read_text())
    assert summary["by_status"] == {"succeeded": 2}
