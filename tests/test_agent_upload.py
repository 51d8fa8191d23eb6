"""Users' own agents over HTTP, and the per-user quotas, against one live server
(real Ray Serve on 127.0.0.1, real runs of the uploaded agents, real git, real dockerd).

An uploaded tarball and a git-URL agent run and score; hostile tarballs (a link out, a
device file, a 2 GB payload, `..`, a hard link out, a broken config, a Dockerfile that fails)
each get their reason; another user neither sees nor runs the agent; an admin sees
everything; the quotas answer 429 naming themselves.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness import Client, HarnessAPIError
from harness.registry import BUILTIN_AGENTS
from tests.procs import free_port

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
COMP = "breast-cancer-diagnosis"
TOKENS: dict[str, Any] = {
    "alice-token-0001": "alice",
    "bob-token-0002": "bob",
    "root-token-0003": {"user": "root", "admin": True},
    "quota-one-0004": {"user": "q1", "max_concurrent_attempts": 1},
    "quota-cpu-0005": {"user": "q2", "cpu_seconds_per_day": 0.001},
}


class Live:
    def __init__(self, url: str, root: Path) -> None:
        self.url, self.root = url, root

    def client(self, user: str) -> Client:
        token = next(t for t, v in TOKENS.items() if (v if isinstance(v, str) else v["user"]) == user)
        return Client(self.url, token=token, timeout_s=120)


@pytest.fixture(scope="module")
def live(ray_local: Any, harness_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from harness.serve.app import start, stop

    root = tmp_path_factory.mktemp("uploads")
    (root / "tokens.json").write_text(json.dumps(TOKENS))
    url = start("127.0.0.1", free_port(), store=str(root / "runs"), tokens=str(root / "tokens.json"),
                max_runs_per_user=4, agents_path=[str(REPO / "tests" / "agents")],
                allow_local_git=True)  # the test's git remotes are local repositories
    yield Live(url, root)
    stop()


def _agent_folder(dest: Path, marker: str = "") -> Path:
    """A copy of the dummy agent (it submits the sample submission), with a marker line of its own."""
    dest.mkdir(parents=True)
    (dest / "run.py").write_text((BUILTIN_AGENTS / "dummy" / "run.py").read_text() + f"\nprint({marker!r})\n")
    (dest / "config.yaml").write_text("description: my own agent\ncommand: python3 run.py\n"
                                      "resources: {cpus: 1, memory_gb: 1}\ntime_limit_s: 120\n")
    (dest / "lib").mkdir()
    (dest / "lib" / "helper.py").write_text("X = 1\n")
    os.symlink("lib/helper.py", dest / "helper_link.py")  # a link inside the folder is fine
    return dest


def _tarball(add: Callable[[tarfile.TarFile], None], with_config: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if with_config:
            _add_bytes(tar, "config.yaml", b"command: python3 run.py\n")
            _add_bytes(tar, "run.py", b"print('hi')\n")
        add(tar)
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _refused(client: Client, data: bytes, name: str = "bad") -> HarnessAPIError:
    with pytest.raises(HarnessAPIError) as e:
        client._json("POST", "/agents", params={"name": name}, content=data, headers={"content-type": "application/gzip"})
    assert e.value.status == 400, e.value
    return e.value


def _run_and_score(client: Client, agent_id: str) -> dict[str, Any]:
    run_id = client.run(competitions=[COMP], agent_id=agent_id, lite=True)
    final = client.wait_for_completion(run_id, timeout=300, poll_s=0.5, progress=False)
    assert final["status"] == "completed", final
    df = client.get_results(run_id)
    assert list(df["status"]) == ["succeeded"] and bool(df["valid_submission"].iloc[0]) and df["score"].notna().all()
    return final


def test_uploaded_tarball_runs_scores_and_stays_private(live: Live, tmp_path: Path) -> None:
    alice, bob, root = live.client("alice"), live.client("bob"), live.client("root")
    rec = alice.upload_agent(_agent_folder(tmp_path / "mine", "tarball agent"), "my-agent")
    assert rec["id"] == "alice/my-agent" and rec["owner"] == "alice" and len(rec["version"]) == 16 and rec["image"] is None
    again = alice.upload_agent(tmp_path / "mine", "my-agent")
    assert again["version"] == rec["version"]  # the same content is the same version
    assert "alice/my-agent" in alice.list_agents() and "dummy" in alice.list_agents()
    assert "alice/my-agent" not in bob.list_agents()
    assert "alice/my-agent" in root.list_agents()

    final = _run_and_score(alice, "alice/my-agent")
    files = [f["path"] for f in alice.list_artifacts(final["run_id"])]
    agent_log = next(p for p in files if p.endswith("logs/agent.log"))
    log = alice.get_artifact(final["run_id"], agent_log)
    assert b"tarball agent" in log  # it was this upload that ran

    with pytest.raises(HarnessAPIError) as e:
        bob.run(competitions=[COMP], agent_id="alice/my-agent", lite=True)
    assert e.value.status == 400 and "unknown agent 'alice/my-agent'" in e.value.message
    assert "alice/my-agent" not in e.value.message.split("known agents:")[1]
    with pytest.raises(HarnessAPIError) as e:
        bob.delete_agent("alice/my-agent")
    assert e.value.status == 404
    assert final["run_id"] in [r["run_id"] for r in root.list_runs()]  # the admin sees every run
    assert final["run_id"] not in [r["run_id"] for r in bob.list_runs()]

    # a new version under the same name; then DELETE removes it for good
    (tmp_path / "mine" / "run.py").write_text((tmp_path / "mine" / "run.py").read_text() + "print('v2')\n")
    v2 = alice.upload_agent(tmp_path / "mine", "my-agent")
    assert v2["version"] != rec["version"]
    assert alice.delete_agent("my-agent")["version"] == v2["version"]
    assert "alice/my-agent" not in alice.list_agents()
    with pytest.raises(HarnessAPIError) as e:
        alice.run(competitions=[COMP], agent_id="alice/my-agent", lite=True)
    assert e.value.status == 400


def test_git_url_agent_runs_and_scores(live: Live, tmp_path: Path) -> None:
    repo = _agent_folder(tmp_path / "repo", "git agent v1")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    v1 = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (repo / "run.py").write_text((repo / "run.py").read_text().replace("git agent v1", "git agent v2"))
    subprocess.run([*git, "commit", "-qam", "v2"], check=True)

    alice = live.client("alice")
    rec = alice.upload_agent(f"file://{repo}", "git-agent", ref=v1)  # a commit, not the branch's head
    assert rec["id"] == "alice/git-agent" and rec["source"].startswith("git file://")
    final = _run_and_score(alice, "alice/git-agent")
    agent_log = next(f["path"] for f in alice.list_artifacts(final["run_id"]) if f["path"].endswith("logs/agent.log"))
    assert b"git agent v1" in alice.get_artifact(final["run_id"], agent_log)
    head = alice.upload_agent(f"file://{repo}", "git-agent", ref="main")
    assert head["version"] != rec["version"]

    with pytest.raises(HarnessAPIError) as e:
        alice.upload_agent(f"file://{repo}", "git-agent", ref="no-such-branch")
    assert e.value.status == 400 and "no-such-branch" in e.value.message and e.value.body["log"]


def test_hostile_tarballs_get_their_reason(live: Live, tmp_path: Path) -> None:
    alice = live.client("alice")

    def link_out(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("data.csv")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(info)

    def device(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("disk")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(info)

    def hard_link_out(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("shadow")
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/shadow"
        tar.addfile(info)

    def climb(tar: tarfile.TarFile) -> None:
        _add_bytes(tar, "../../escape.py", b"x")

    def fifo(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("pipe")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)

    assert "outside the agent folder" in _refused(alice, _tarball(link_out)).message
    assert "device file" in _refused(alice, _tarball(device)).message
    assert "hard link" in _refused(alice, _tarball(hard_link_out)).message
    assert "`..`" in _refused(alice, _tarball(climb)).message
    assert "FIFO" in _refused(alice, _tarball(fifo)).message

    # a 2 GB member: refused from its header, before any of its data is read (the stream stops there)
    config = tarfile.TarInfo("config.yaml")
    config.size = 24
    weights = tarfile.TarInfo("weights.bin")
    weights.size = 2 << 30
    stream = config.tobuf() + b"command: python3 run.py\n".ljust(512, b"\0") + weights.tobuf() + b"\0" * (1 << 20)
    buf = io.BytesIO(gzip.compress(stream, compresslevel=1))
    msg = _refused(alice, buf.getvalue()).message
    assert "'weights.bin'" in msg and "size limit" in msg

    broken = _refused(alice, _tarball(lambda t: _add_bytes(t, "config.yaml", b"command: run\nresources: {cpus: -1}\n"),
                                      with_config=False)).message
    assert "config.yaml: field 'resources.cpus'" in broken
    assert "config.yaml is missing" in _refused(alice, _tarball(lambda t: None, with_config=False)).message
    assert "not a .tar.gz" in _refused(alice, b"not an archive at all").message
    with pytest.raises(HarnessAPIError) as e:
        alice.upload_agent(f"file://{tmp_path}", "Bad Name", ref="main")
    assert e.value.status == 400 and "agent name 'Bad Name'" in e.value.message
    assert not any(a.startswith("alice/bad") for a in alice.list_agents())


def _docker_ready() -> None:
    from harness.sandbox.docker.images import base_image_tag, docker_client, engine_unavailable, image_exists

    why = engine_unavailable()
    if why is None and not image_exists(docker_client(), base_image_tag()):
        why = f"the base image {base_image_tag()} is not built"
    if why:
        if os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
            pytest.fail(why)
        pytest.skip(why)


@pytest.mark.docker
def test_dockerfile_is_built_and_a_failing_build_answers_with_its_log(live: Live, tmp_path: Path) -> None:
    _docker_ready()
    alice = live.client("alice")
    good = shutil.copytree(REPO / "tests" / "agents" / "imaged", tmp_path / "imaged")
    (good / "nonce.txt").write_text(str(time.time_ns()))  # new content: the image is built now, not found
    rec = alice.upload_agent(good, "imaged")
    assert rec["image"] and rec["image"].startswith("harness-agent:")
    log = alice.get_agent_build_log("imaged")
    assert "/opt/agent-marker" in log and rec["image"] in log
    bad = shutil.copytree(REPO / "tests" / "agents" / "broken-image", tmp_path / "broken")
    with pytest.raises(HarnessAPIError) as e:
        alice.upload_agent(bad, "broken")
    assert e.value.status == 400 and "building the agent's docker image failed" in e.value.message
    assert "toolkit.tar.gz not found" in e.value.body["log"]
    assert "alice/broken" not in alice.list_agents()


def test_quotas_answer_429_naming_the_quota(live: Live) -> None:
    q1, q2 = live.client("q1"), live.client("q2")
    first = q1.run(competitions=[COMP], agent_id="sleeper", lite=True)
    assert q1.get_run(first)["spec"]["max_concurrency"] == 1  # the quota is the run's cap
    with pytest.raises(HarnessAPIError) as e:
        q1.run(competitions=[COMP], agent_id="dummy", lite=True)
    assert e.value.status == 429 and e.value.body["field"] == "max_concurrent_attempts"
    assert "max_concurrent_attempts is 1" in e.value.message
    q1.cancel(first)

    run_id = q2.run(competitions=[COMP], agent_id="dummy", lite=True)
    q2.wait_for_completion(run_id, timeout=300, poll_s=0.5, progress=False)
    assert float(q2.get_results(run_id)["agent_seconds"].iloc[0]) > 0.001
    with pytest.raises(HarnessAPIError) as e:
        q2.run(competitions=[COMP], agent_id="dummy", lite=True)
    assert e.value.status == 429 and e.value.body["field"] == "cpu_seconds_per_day"
    assert "cpu_seconds_per_day is 0.001" in e.value.message
    deadline = time.monotonic() + 120
    while q1.get_run(first)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    with pytest.raises(HarnessAPIError) as e:  # beyond what the quota leaves even when nothing runs
        q1.run(competitions=[COMP], agent_id="dummy", lite=True, max_concurrency=2)
    assert e.value.status == 429 and "ask for at most 1" in e.value.message


def _cli(*args: str, token: str, url: str) -> subprocess.CompletedProcess[str]:
    """`harness agents ...` as a user types it (the CLI's own process; server and token from the environment)."""
    env = {**os.environ, "HARNESS_URL": url, "HARNESS_API_TOKEN": token, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "agents", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_agents_push_a_tarball_then_run_it(live: Live, tmp_path: Path) -> None:
    """`harness agents push` end to end: a .tar.gz made by tar, registered as alice's, listed, run and scored;
    a broken one and a missing path each answer one line and exit 1; `harness agents delete` removes it."""
    folder = _agent_folder(tmp_path / "cli-agent", "pushed by the CLI")
    tgz = tmp_path / "cli-agent.tar.gz"
    subprocess.run(["tar", "-czf", str(tgz), "-C", str(folder), "."], check=True)
    token = next(t for t, v in TOKENS.items() if v == "alice")
    pushed = _cli("push", str(tgz), "--name", "cli-agent", token=token, url=live.url)
    assert pushed.returncode == 0, pushed.stderr
    rec = json.loads(pushed.stdout)
    assert rec["id"] == "alice/cli-agent" and f"registered alice/cli-agent version {rec['version']}" in pushed.stderr
    listed = _cli("list", token=token, url=live.url)
    assert listed.returncode == 0 and ["alice/cli-agent", rec["version"]] in [ln.split() for ln in listed.stdout.splitlines()]

    alice = live.client("alice")
    final = _run_and_score(alice, "alice/cli-agent")
    agent_log = next(f["path"] for f in alice.list_artifacts(final["run_id"]) if f["path"].endswith("logs/agent.log"))
    assert b"pushed by the CLI" in alice.get_artifact(final["run_id"], agent_log)
    assert "alice/cli-agent" not in live.client("bob").list_agents()

    (folder / "config.yaml").write_text("command: [unclosed\n")
    broken = tmp_path / "broken.tar.gz"
    subprocess.run(["tar", "-czf", str(broken), "-C", str(folder), "."], check=True)
    for source in (str(broken), str(tmp_path / "no-such-agent")):
        bad = _cli("push", source, "--name", "cli-broken", token=token, url=live.url)
        errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
        assert bad.returncode == 1 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
        assert ("config.yaml" in errors[0]) if source == str(broken) else ("no-such-agent" in errors[0])
    gone = _cli("delete", "cli-agent", token=token, url=live.url)
    assert gone.returncode == 0 and "deleted alice/cli-agent" in gone.stderr
    assert "alice/cli-agent" not in alice.list_agents()
