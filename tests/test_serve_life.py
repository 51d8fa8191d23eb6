"""`harness serve` as a real process on its own local Ray: its runs survive a SIGKILL of the server
(the next server on the store resumes them, one row per attempt), SIGTERM shuts it down cleanly
(exit 0, Serve's port closed, every process of its embedded Ray gone, checked by PID), it exits 3
when its Ray is gone (its GCS killed by PID), and `--address` to a Ray that refuses the client
fails in one line naming RAY_AUTH_MODE. Processes are found as descendants of the server process
and killed by PID only.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness import Client
from harness.store import RunStore
from tests.procs import descendants, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

COMP = "breast-cancer-diagnosis"
SEEDS = 4
TEST_AGENTS = Path(__file__).parent / "agents"  # `slow`: each attempt takes 2 s


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pids: list[int]) -> list[int]:
    """Those of `pids` that are live processes (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.append(pid)
    return out


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def _listen_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on, from its socket inodes and /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class ServeProcess:
    """One `harness serve` subprocess; every process it ever had is remembered, to be killed at the end."""

    started: list[int] = []

    def __init__(self, store: Path, port: int, log: Path, env: dict[str, str] | None = None, *args: str) -> None:
        self.port, self.log = port, log
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", str(port), "--store", str(store), *args],
            stdout=subprocess.PIPE, stderr=open(log, "ab"), env={**base, **(env or {})}, text=True)
        self.url = f"http://127.0.0.1:{port}"

    def wait_up(self, timeout: float = 300) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line.strip() == self.url, f"no URL from harness serve; its log ends with:\n{self.stderr()}"
        self.family()

    def family(self) -> list[int]:
        """The server and its descendants now (also remembered for the final cleanup)."""
        pids = descendants(self.proc.pid)
        ServeProcess.started += [p for p in pids if p not in ServeProcess.started]
        return pids

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def cleanup() -> Any:
    yield
    for pid in _alive(ServeProcess.started):  # what a killed server's Ray left behind, by PID
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    ServeProcess.started.clear()


def _wait(ok: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_runs_survive_a_killed_server_and_sigterm_is_clean(harness_dirs: dict[str, Path], tmp_path: Path,
                                                           cleanup: None) -> None:
    store, port = tmp_path / "runs", free_port()
    env = {"HARNESS_AGENTS_PATH": str(TEST_AGENTS)}
    first = ServeProcess(store, port, tmp_path / "serve-1.log", env)
    first.wait_up()
    client = Client(first.url, timeout_s=60)
    run_id = client.run(competitions=[COMP], agent_id="slow", lite=True, seeds=SEEDS, max_concurrency=1)
    rs = RunStore(store, run_id)

    def rows() -> int:
        return sum(1 for n in os.listdir(rs.attempts_dir) if n.endswith(".parquet")) if rs.attempts_dir.is_dir() else 0

    _wait(lambda: rows() >= 1, 240, "the first attempt row")
    assert rows() < SEEDS, "the run finished before the server could be killed mid-run"
    first.family()
    first.proc.kill()  # SIGKILL: no cleanup of any kind; its Ray's processes die or linger on their own
    first.proc.wait(timeout=30)
    assert rs.read_state().status == "running"

    second = ServeProcess(store, port, tmp_path / "serve-2.log", env)
    second.wait_up()
    final = Client(second.url, timeout_s=60).wait_for_completion(run_id, timeout=300, poll_s=1)
    assert final["status"] == "completed" and final["done"] == final["total"] == SEEDS, final
    results = Client(second.url, timeout_s=60).get_results(run_id)
    assert sorted(results["attempt_id"]) == sorted(f"{COMP}__slow__s{i}" for i in range(SEEDS))
    assert list(results["status"]) == ["succeeded"] * SEEDS

    family = second.family()
    assert any(_comm(p) == "raylet" for p in family) and any(_comm(p) == "gcs_server" for p in family)
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(timeout=120) == 0, second.stderr()
    assert "shutting down Serve and Ray" in second.stderr()
    assert not _listening(port)
    _wait(lambda: not _alive(family), 10, f"the server's processes to be gone: {_alive(family)}")


def test_exits_3_when_its_ray_is_gone_and_address_auth_is_one_line(harness_dirs: dict[str, Path], tmp_path: Path,
                                                                   cleanup: None) -> None:
    port = free_port()
    server = ServeProcess(tmp_path / "runs", port, tmp_path / "serve.log")
    server.wait_up()
    family = server.family()
    gcs = [p for p in family if _comm(p) == "gcs_server"]
    assert len(gcs) == 1
    gcs_port = min(_listen_ports(gcs[0]))  # the GCS listens on its RPC port (and on a metrics port)

    # --address to a Ray with token authentication, from a client that has no token: one line, exit 2
    home = tmp_path / "home"  # no ~/.ray/auth_token there
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    refused = subprocess.run([sys.executable, "-m", "harness.cli", "serve", "--port", str(free_port()),
                              "--address", f"127.0.0.1:{gcs_port}"], env={**env, "HOME": str(home)},
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "RAY_AUTH_MODE" in errors[0] and "Traceback" not in refused.stderr, refused.stderr[-2000:]

    os.kill(gcs[0], signal.SIGKILL)
    assert server.proc.wait(timeout=120) == 3, server.stderr()
    assert "gcs_server" in server.stderr() and "exiting with status 3" in server.stderr()
    _wait(lambda: not _alive(family), 20, f"the server's processes to be gone: {_alive(family)}")


def test_watchdog_gives_a_dead_port_its_grace() -> None:
    """The HTTP check: a port that answers is fine; one that stopped answering is gone only after the grace."""
    from harness.serve.life import Watchdog

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    watch = Watchdog("0.0.0.0", port, grace_s=5)  # a wildcard host is watched through loopback
    assert watch.watch_http and watch.http_problem() is None
    listener.close()
    t0 = time.monotonic()
    assert watch.http_problem(now=t0) is None
    assert watch.http_problem(now=t0 + 4) is None
    problem = watch.http_problem(now=t0 + 5)
    assert problem is not None and f"127.0.0.1:{port}" in problem
    assert Watchdog("127.0.0.1", port).watch_http is False  # not listening at the start: another node's proxy


def test_watchdog_gives_a_cluster_gcs_a_few_misses() -> None:
    """An external cluster's GCS (across a network) is gone only after GCS_MISSES failed connects
    in a row; one that answers again in between resets the count."""
    from harness.serve.life import GCS_MISSES, Watchdog

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    watch = Watchdog("127.0.0.1", free_port())
    watch.node, watch.gcs = None, ("127.0.0.1", port)  # as with --address: no embedded node, a GCS to reach
    assert watch.ray_problem() is None
    listener.close()
    assert [watch.ray_problem() for _ in range(GCS_MISSES - 1)] == [None] * (GCS_MISSES - 1)
    problem = watch.ray_problem()
    assert problem is not None and f"127.0.0.1:{port}" in problem and f"{GCS_MISSES} checks in a row" in problem


def test_resume_orphans_leaves_what_it_must_alone(ray_local: Any, tmp_path: Path) -> None:
    """Only owned, unfinished runs nobody drives: a held driver lock, a `harness run` run (no owner) and a
    finished run are left as they are (nothing is launched for them)."""
    from harness.serve.auth import TokenTable
    from harness.serve.service import APIError, RunService
    from harness.spec import RunSpec, RunState

    service = RunService(str(tmp_path / "runs"), TokenTable(None))
    spec = RunSpec(agent="dummy", competitions=[COMP], lite=True)
    for run_id, owner, status in (("held", "alice", "running"), ("cli", None, "running"), ("done", "alice", "completed")):
        RunStore(service.root, run_id).write_state(RunState(run_id=run_id, spec=spec, owner=owner, status=status, total=1))
    lock = RunStore(service.root, "held").claim_driver()  # a driver outside this Ray still drives it
    try:
        assert service.resume_orphans() == ([], ["held"])
        # and it is live for the API too: neither resumed (a second driver) nor cancelled over its driver
        held = RunStore(service.root, "held").read_state()
        assert service.liveness(held)
        with pytest.raises(APIError) as refused:
            service.resume_run("held", "alice")
        assert refused.value.status == 409
    finally:
        lock.release()
    assert not service.liveness(RunStore(service.root, "held").read_state())  # its driver is gone: interrupted
    assert [RunStore(service.root, r).read_state().status for r in ("held", "cli", "done")] == ["running", "running", "completed"]
    assert not (service.root / "cli" / ".driver.lock").exists()  # looking at a lock creates none


def test_runs_with_times_without_a_zone_still_list(tmp_path: Path) -> None:
    """A hand-edited run.json whose created_at has no time zone (read as UTC) sorts with the others."""
    import json

    from harness.spec import RunSpec, RunState
    from harness.store import list_runs

    spec = RunSpec(agent="dummy", competitions=[COMP], lite=True)
    RunStore(tmp_path, "aware").write_state(RunState(run_id="aware", spec=spec))
    naive = json.loads(RunState(run_id="naive", spec=spec).model_dump_json())
    naive["created_at"] = "2020-01-01T00:00:00"
    (tmp_path / "naive").mkdir()
    (tmp_path / "naive" / "run.json").write_text(json.dumps(naive))
    assert [s.run_id for s in list_runs(tmp_path)] == ["aware", "naive"]
