"""The wheel is the whole project: built with `pip wheel . --no-deps`, installed into a
fresh virtual environment outside the checkout (dependencies from the system site-packages),
and used from a directory that is not the checkout — the CLI's listings, a run of the lite
split, a technique task, the sandbox's hiding of competitions and task folders, and the
HTTP service with one SDK call."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest

from tests.procs import free_port

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
#: what the built-in layout must bring along (paths inside the installed package)
MUST_SHIP = [
    "harness/agents/dummy/config.yaml", "harness/agents/baseline/solve.py", "harness/splits/lite.txt",
    "harness/technique_tasks/imbalance/task.py", "harness/technique_tasks/ml-spec/instructions.md",
    "harness/techniques/sdk.py", "harness/serve/app.py", "harness/serve/config.yaml",
    "harness/competitions/breast-cancer-diagnosis/config.yaml", "harness/_mlebench_shim/mlebench/utils.py",
    "harness/py.typed", "harness/sandbox/docker/images.py", "harness/sandbox/docker/recipe/base.Dockerfile",
    "harness/sandbox/docker/recipe/requirements.txt", "harness/sandbox/docker/recipe/hide_datasets.py",
]


class Installed:
    """A venv holding the wheel, and how to call it from a directory outside the checkout."""

    def __init__(self, root: Path, wheel: Path, venv: Path, env: dict[str, str]) -> None:
        self.root, self.wheel, self.venv, self.env = root, wheel, venv, env
        self.cwd = root / "elsewhere"
        self.cwd.mkdir()
        self.runs = root / "runs"

    @property
    def site(self) -> Path:
        out = subprocess.run([str(self.venv / "bin" / "python"), "-c", "import harness, os; print(os.path.dirname(harness.__file__))"],
                             env=self.env, cwd=self.cwd, capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())

    def harness(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "harness"), *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, harness_dirs: dict[str, Path]) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    # build from a copy, so the build leaves nothing in the checkout and cannot read outside the tree
    src = root / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".venv"))
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(dist)],
                   cwd=src, check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("harness-*.whl"))
    # the venv's interpreter runs inside the sandbox as an unprivileged uid, so its path must be
    # traversable by others (pytest's temp root is root-only)
    venv = Path(tempfile.mkdtemp(prefix="harness-wheel-venv-")) / "venv"
    venv.parent.chmod(0o755)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_AGENTS_PATH", "HARNESS_COMPETITIONS_PATH")}
        env.update(RAY_USAGE_STATS_ENABLED="0", HARNESS_RUNS_DIR=str(root / "runs"), HARNESS_DATA_DIR=str(harness_dirs["data"]),
                   HARNESS_WORK_DIR=str(root / "work"), RAY_ADDRESS="local", COLUMNS="200")
        # the system's pip, run by the venv's interpreter, installs into the venv
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       env=env, check=True, capture_output=True, timeout=300)
        inst = Installed(root, wheel, venv, env)
        assert inst.site == venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "harness"
        yield inst
    finally:  # outside pytest's temp root, so removed here
        shutil.rmtree(venv.parent, ignore_errors=True)


def _attempts(runs: Path, run_id: str) -> pd.DataFrame:
    return pd.read_parquet(runs / run_id / "attempts.parquet")


def test_the_wheel_holds_every_part_of_the_project(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as z:
        names = set(z.namelist())
        top_level = next(n for n in names if n.endswith("top_level.txt"))
        assert z.read(top_level).decode().split() == ["harness"]  # no `agents`/`serve` package beside it
    missing = [p for p in MUST_SHIP if p not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    # every file of the package in the checkout is in the wheel
    in_tree = {str(p.relative_to(REPO)) for p in (REPO / "harness").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert in_tree - names == set()
    # the docker backend's image recipe ships inside it: the installed harness names the same base image
    code = "from harness.sandbox.docker.images import base_image_tag; print(base_image_tag())"
    tag = subprocess.run([str(installed.venv / "bin" / "python"), "-c", code], env=installed.env, cwd=installed.cwd,
                         capture_output=True, text=True, check=True).stdout.strip()
    from harness.sandbox.docker.images import base_image_tag

    assert tag == base_image_tag()


def test_listings_come_from_the_installed_package(installed: Installed) -> None:
    agents = installed.harness("list", "agents")
    assert agents.returncode == 0, agents.stderr
    assert {"dummy", "baseline"} <= set(agents.stdout.split())
    splits = installed.harness("list", "splits")
    assert splits.returncode == 0, splits.stderr
    # piped: tab-separated, every id in full
    assert "lite\tbreast-cancer-diagnosis, diabetes-progression, digit-images, italy-power-demand\n" in splits.stdout
    tasks = installed.harness("list", "tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert "\nimbalance\ttechnique\t" in tasks.stdout and "\nml-spec\tengineering\t" in tasks.stdout


def test_a_run_of_the_lite_split_and_the_service(installed: Installed) -> None:
    done = installed.harness("run", "--split", "lite", "--agent", "dummy")
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.split()[0]
    df = _attempts(installed.runs, run_id)
    assert sorted(df["competition_id"]) == ["breast-cancer-diagnosis", "diabetes-progression", "digit-images", "italy-power-demand"]
    assert set(df["status"]) == {"succeeded"} and df["valid_submission"].all()
    assert set(df["isolation"]) <= {"bwrap", "none"}

    # the service, started from the installed package, serves that run to the SDK
    port = free_port()
    proc = subprocess.Popen([str(installed.venv / "bin" / "harness"), "serve", "--port", str(port)], env=installed.env,
                            cwd=installed.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once the app is ready
        assert url == f"http://127.0.0.1:{port}", proc.stderr.read() if proc.poll() is not None and proc.stderr else url
        summary = _sdk(installed, url, run_id)
        assert summary["run_id"] == run_id and summary["status"] == "completed"
        assert "summary.json" in summary["report_files"] and summary["valid_submission_rate"] == 1.0
        assert summary["agents"] == ["aide", "aide/dev", "baseline", "coding-agent", "coding-agent/dev", "dummy"] and summary["model_rate"] == 1.0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_technique_task_and_the_sandbox_hides_task_folders(installed: Installed, tmp_path: Path) -> None:
    done = installed.harness("run", "--agent", "baseline", "--technique-tasks", "imbalance")
    assert done.returncode == 0, done.stderr[-2000:]
    row = _attempts(installed.runs, done.stdout.split()[0]).iloc[0]
    assert row["technique"] == "imbalance" and row["status"] == "succeeded" and row["score"] >= 0.9

    # an agent looking for the answers where the wheel put them finds nothing
    site = installed.site
    secret = [site / "competitions", site / "technique_tasks", site / "competitions" / "breast-cancer-diagnosis" / "prepare.py",
              Path("/opt/harness/harness/competitions"), Path("/opt/harness/harness/technique_tasks")]
    control = [site / "grading.py"]  # the rest of the package is there (so the probe is not blind)
    agent = tmp_path / "agents" / "wheelprobe"
    agent.mkdir(parents=True)
    shutil.copyfile(REPO / "tests" / "agents" / "probe" / "probe.py", agent / "probe.py")
    (agent / "config.yaml").write_text(json.dumps({
        "command": "python3 probe.py", "resources": {"cpus": 1, "memory_gb": 1}, "time_limit_s": 120,
        "env_vars": {"PROBE_PATHS": os.pathsep.join(str(p) for p in secret + control)}}))
    env = {**installed.env, "HARNESS_AGENTS_PATH": str(tmp_path / "agents")}
    probe = subprocess.run([str(installed.venv / "bin" / "harness"), "run", "-c", "breast-cancer-diagnosis", "--lite",
                            "--agent", "wheelprobe"], env=env, cwd=installed.cwd, capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stderr[-2000:]
    run_id = probe.stdout.split()[0]
    row = _attempts(installed.runs, run_id).iloc[0]
    if row["isolation"] != "bwrap":
        pytest.skip("bubblewrap is not usable here: nothing is hidden without it")
    seen = json.loads((installed.runs / run_id / "artifacts" / row["attempt_id"] / "logs" / "probe.json").read_text())["readable"]
    assert isinstance(seen[str(control[0])], int) and seen[str(control[0])] > 0
    leaked = {p: seen[str(p)] for p in secret if seen[str(p)]}
    assert not leaked, f"the agent could read {leaked}"


def _sdk(installed: Installed, url: str, run_id: str) -> dict[str, Any]:
    """One SDK session in the venv's interpreter: the run's summary and the agents, as JSON."""
    code = ("import json, sys; from harness import Client; c = Client(sys.argv[1]); "
            "s = c.get_run_summary(sys.argv[2]); s['agents'] = c.list_agents(); "
            "s['model_rate'] = c.get_summary(sys.argv[2]).valid_submission_rate; print(json.dumps(s))")
    out = subprocess.run([str(installed.venv / "bin" / "python"), "-c", code, url, run_id], env=installed.env,
                         cwd=installed.cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))
