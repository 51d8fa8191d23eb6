"""Faults inside one real local Ray: the process running an attempt, and the grader actor's
process, SIGKILLed (by PID) mid-run. The attempt comes back as an infrastructure failure and is
run again, the grader is replaced, the agent is charged nothing, and the table has exactly one
row per attempt. (A whole node killed is in tests/test_multinode.py.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.procs import is_descendant

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _ray_processes(title: str) -> list[int]:
    """PIDs of this machine's processes whose title (Ray sets it as argv) starts with `title`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv0 = cmdline.read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        if argv0.startswith(title):
            found.append(int(cmdline.parent.name))
    return found


def _ours(pids: list[int]) -> list[int]:
    """Only processes of the Ray this test started: below this process (driver -> raylet -> worker)."""
    return [pid for pid in pids if is_descendant(pid, os.getpid())]


def test_a_killed_attempt_worker_and_grader_cost_the_agent_nothing(ray_local, store: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import harness

    agent = tmp_path / "agents" / "sleepy"
    agent.mkdir(parents=True)
    (agent / "config.yaml").write_text(
        "command: [sh, -c, 'sleep 4; cp /home/data/sample_submission.csv /home/submission/submission.csv']\n"
        "resources: {cpus: 1, memory_gb: 0.5}\ntime_limit_s: 120\n")
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(tmp_path / "agents"))
    out: dict[str, Any] = {}

    def go() -> None:
        out["result"] = harness.run(["breast-cancer-diagnosis"], agent="sleepy", lite=True, seeds=3, store=store,
                                    max_concurrency=2, max_retries=1)

    runner = threading.Thread(target=go)
    runner.start()
    killed: dict[str, int] = {}
    deadline = time.monotonic() + 240
    while runner.is_alive() and time.monotonic() < deadline and len(killed) < 2:
        if "attempt" not in killed:
            workers = _ours(_ray_processes("ray::_attempt_task"))
            if workers and any(store.glob("*/artifacts/*/logs")):
                time.sleep(1)  # the agent is running in its sandbox
                os.kill(workers[0], signal.SIGKILL)
                killed["attempt"] = workers[0]
        if "grader" not in killed:
            graders = _ours(_ray_processes("ray::_Grader"))
            if graders:
                os.kill(graders[0], signal.SIGKILL)
                killed["grader"] = graders[0]
        time.sleep(0.2)
    runner.join(300)
    assert not runner.is_alive(), "the run did not finish"
    assert set(killed) == {"attempt", "grader"}, killed
    rows = out["result"].attempts
    assert len(rows) == 3 and rows["attempt_id"].is_unique, rows.to_string()
    assert (rows["status"] == "succeeded").all() and rows["valid_submission"].all(), rows[["status", "error"]].to_string()
    assert sorted(rows["tries"]) == [1, 1, 2], rows[["attempt_id", "tries"]].to_string()  # the killed one ran again
