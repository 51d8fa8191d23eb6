"""A real multi-node Ray cluster on this machine: a head with no CPUs and two worker nodes
(`ray start` processes, each with its own HARNESS_DATA_DIR and HARNESS_WORK_DIR and a custom
resource), token authentication on. Runs go in through `ray job submit` (and the
`experiments/submit_run.py` entry script that `ray submit` uses), so the driver sits on the
head and every attempt executes on a worker: data prepared on the worker's own disk, the agent
folder travelling with the attempt, artifacts arriving in the store. A worker node killed
mid-run (its whole process group, by PID) costs the agent nothing: its attempts come back as
infrastructure failures, are retried on the other worker, and the table has one row per attempt.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness.store import RunStore, list_runs
from tests.procs import free_port, kill_family

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

RAY = str(Path(sys.executable).parent / "ray")
REPO = Path(__file__).resolve().parent.parent
TEST_AGENTS = Path(__file__).parent / "agents"
RESOURCE = "harness_worker"


class Cluster:
    """The processes this module started; stopped through their own process groups only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(16)
        self.gcs, self.dash = free_port(), free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.dirs: dict[str, dict[str, Path]] = {}
        # Ray's temp root of this cluster alone (short: it holds AF_UNIX sockets): beside another
        # cluster in /tmp/ray, a job's driver was seen to get the other cluster's token
        self.temp = Path(tempfile.mkdtemp(prefix="ray-"))

    def env(self, name: str, token: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        dirs = self.dirs.setdefault(name, {"data": self.root / name / "data", "work": self.root / name / "work"})
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        env.update(RAY_USAGE_STATS_ENABLED="0", HARNESS_DATA_DIR=str(dirs["data"]), HARNESS_WORK_DIR=str(dirs["work"]),
                   HARNESS_AGENTS_PATH=str(TEST_AGENTS))
        if token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        return env

    def start(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", f"--temp-dir={self.temp}", *args], env=self.env(name),
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def job_address(self) -> str:
        return f"http://127.0.0.1:{self.dash}"

    def submit(self, entrypoint: list[str], token: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RAY, "job", "submit", "--address", self.job_address, "--", *entrypoint],
                              env=self.env("client", token), capture_output=True, text=True, timeout=timeout)

    def _api(self, path: str, **params: Any) -> httpx.Response:
        """GET from the head's dashboard with the cluster's token."""
        return httpx.get(f"{self.job_address}{path}", params=params, headers={"Authorization": f"Bearer {self.token}"},
                         timeout=10)

    def wait_head(self) -> None:
        """Until the head takes jobs: its dashboard answers (HTTP; a `ray job submit` before that only
        fails, slowly), then one `ray job submit -- true` succeeds."""
        def dashboard_up() -> bool:
            try:
                return self._api("/api/version").status_code == 200
            except httpx.HTTPError:
                return False

        _wait(dashboard_up, self, "head", interval=0.25)
        _wait(lambda: self.submit(["true"], timeout=120).returncode == 0, self, "head")

    def alive_nodes(self) -> int:
        """Alive nodes as the GCS sees them, asked through the head's state API (-1 while it cannot
        be asked). One HTTP call, not a Ray client process per look."""
        try:
            r = self._api("/api/v0/nodes", limit=100)
            if r.status_code != 200:
                return -1
            return sum(n.get("state") == "ALIVE" for n in r.json()["data"]["result"]["result"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return -1

    def kill(self, name: str) -> None:
        """SIGKILL the node: its `ray start` process and every process it started (raylet, agents,
        workers; Ray gives some their own process group, so by PID, walking our own descendants)."""
        proc = self.procs.pop(name)
        kill_family(proc.pid)
        proc.wait()

    def stop(self) -> None:
        for name in list(self.procs)[::-1]:  # workers first, then the head; nothing of theirs is kept
            self.kill(name)
        shutil.rmtree(self.temp, ignore_errors=True)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        # the head runs the drivers (Ray jobs) and no attempts: it has no CPUs
        c.start("head", ["--head", f"--port={c.gcs}", "--node-ip-address=127.0.0.1", "--num-cpus=0", "--dashboard-host=127.0.0.1",
                         f"--metrics-export-port={free_port()}",
                         f"--dashboard-port={c.dash}", "--include-dashboard=true",
                         f"--dashboard-agent-listen-port={free_port()}"])
        c.wait_head()
        for n, name in enumerate(("worker-a", "worker-b"), start=2):  # one at a time: a raylet has 30 s to register
            c.start(name, [f"--address=127.0.0.1:{c.gcs}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                           f"--resources={json.dumps({RESOURCE: 1})}", f"--dashboard-agent-listen-port={free_port()}",
                           f"--metrics-export-port={free_port()}"])
            _wait(lambda n=n: c.alive_nodes() == n, c, name, interval=0.25)
        yield c
    finally:
        c.stop()


def _wait(ok: Any, c: Cluster, name: str, seconds: float = 180, interval: float = 2) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return
        if any(p.poll() is not None for p in c.procs.values()):
            break
        time.sleep(interval)
    raise AssertionError(f"the cluster did not come up; {name}'s log ends with:\n{c.log(name)}")


def _only_run(store: Path) -> tuple[str, Any]:
    runs = list_runs(store)
    assert len(runs) == 1, runs
    return runs[0].run_id, RunStore(store, runs[0].run_id).attempts()


def test_attempts_run_on_the_workers_own_disks(cluster: Cluster, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = cluster.submit(["harness", "run", "-c", "breast-cancer-diagnosis", "-c", "diabetes-progression", "--lite",
                           "--agent", "dummy", "--seeds", "2", "--ray-resource", f"{RESOURCE}=1", "--store", str(store),
                           "--json"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout  # the job's own output (--json) comes back through `ray job submit`
    run_id, rows = _only_run(store)
    assert len(rows) == 4 and (rows["status"] == "succeeded").all() and rows["valid_submission"].all(), rows.to_string()
    assert list_runs(store)[0].status == "completed"
    assert json.loads((store / run_id / "summary.json").read_text())["by_status"] == {"succeeded": 4}
    # attempts ran on the two workers (node = host:ray-node-id), never on the head
    assert rows["node"].nunique() == 2, rows["node"].tolist()
    used = [n for n in ("worker-a", "worker-b") if (cluster.dirs[n]["work"] / run_id).is_dir()]
    assert len(used) == 2, used
    for name in used:  # each worker prepared the data its attempts needed on its own disk
        data = cluster.dirs[name]["data"]
        assert any(p.is_dir() for p in data.rglob("prepared")), [str(p.relative_to(data)) for p in data.rglob("*")][:20]
    # the artifacts came back into the driver's store
    for attempt_id in rows["attempt_id"]:
        sub = store / run_id / "artifacts" / attempt_id / "submission" / "submission.csv"
        assert sub.is_file() and sub.stat().st_size > 0


def test_entry_script_and_token_auth(cluster: Cluster, tmp_path: Path) -> None:
    refused = cluster.submit(["true"], token=False, timeout=120)
    assert refused.returncode != 0, "a client without the cluster's token was let in"
    store = tmp_path / "store"
    script = REPO / "experiments" / "submit_run.py"
    proc = cluster.submit([sys.executable, str(script), "-c", "diabetes-progression", "--lite", "--agent", "dummy",
                           "--ray-resource", f"{RESOURCE}=1", "--store", str(store)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _, rows = _only_run(store)
    assert len(rows) == 1 and rows["status"].tolist() == ["succeeded"]


def test_a_driver_without_the_token_gets_one_line(cluster: Cluster, tmp_path: Path) -> None:
    """`harness run --address` to a token cluster, no token: refused with the fix, not a hang or a traceback."""
    try:
        proc = subprocess.run(["harness", "run", "-c", "diabetes-progression", "--lite", "--agent", "dummy",
                               "--address", f"127.0.0.1:{cluster.gcs}", "--store", str(tmp_path / "store")],
                              env=cluster.env("client", token=False), capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"still waiting for the cluster after 180 s: {str(e.stderr)[-2000:]}") from None
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "RAY_AUTH_TOKEN" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not list_runs(tmp_path / "store")
    # and an address where nothing listens is refused at once, not retried for minutes
    nowhere = subprocess.run(["harness", "run", "-c", "diabetes-progression", "--lite", "--agent", "dummy",
                              "--address", f"127.0.0.1:{free_port()}", "--store", str(tmp_path / "store")],
                             env=cluster.env("client"), capture_output=True, text=True, timeout=180)
    assert nowhere.returncode == 2 and "nothing answers at the Ray address" in nowhere.stderr, nowhere.stderr[-2000:]
    assert not list_runs(tmp_path / "store")


def test_a_worker_node_killed_mid_run_costs_the_agent_nothing(cluster: Cluster, tmp_path: Path) -> None:
    """Last in the module: it kills worker-b for good."""
    store = tmp_path / "store"
    log = open(tmp_path / "job.log", "w")
    job = subprocess.Popen([RAY, "job", "submit", "--address", cluster.job_address, "--", "harness", "run",
                            "-c", "breast-cancer-diagnosis", "--lite", "--agent", "slow", "--seeds", "6",
                            "--ray-resource", f"{RESOURCE}=1", "--store", str(store)],
                           env=cluster.env("client"), stdout=log, stderr=subprocess.STDOUT)
    # kill worker-b as soon as an attempt is running there
    victim = cluster.dirs["worker-b"]["work"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(victim.glob("*/*/logs")):
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
        time.sleep(0.2)
    assert any(victim.glob("*/*/logs")), "no attempt ever started on worker-b"
    cluster.kill("worker-b")
    assert job.wait(timeout=600) == 0, (tmp_path / "job.log").read_text()[-3000:]
    _, rows = _only_run(store)
    assert len(rows) == 6 and rows["attempt_id"].is_unique
    assert (rows["status"] == "succeeded").all(), rows[["attempt_id", "status", "error"]].to_string()
    assert rows["tries"].max() >= 2, "the attempt on the killed node was not retried"
