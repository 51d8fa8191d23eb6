"""Hostile agents cannot win: what an agent writes is read and copied without trusting it,
and (in both sandboxes, harness running as whatever user CI runs it as, root included)
nothing the agent does lifts a limit, changes a file outside its attempt, or scores from the answers.

Every probe is a tiny shell agent; the file rules are checked on real files (symlinks,
hard links, FIFOs, devices, 2 GB sparse files) without any sandbox first.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.grading import InvalidSubmissionError, read_submission
from harness.safe_files import CopyReport, UnsafeFile, copy_tree, extract_tar, read_beneath, tar_tree
from harness.tasks import REFUSED, CompetitionTask
from tests.conftest import need_docker

REPO = Path(__file__).resolve().parent.parent
TWO_GB = 2 * 1024**3


# ---------------------------------------------------------------- the file rules, on real files


@pytest.fixture
def attempt(tmp_path: Path) -> Path:
    """An attempt dir with private answers next to it, as in the store and the data cache."""
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "answers.csv").write_text("id,y\n1,1\n2,0\n")
    for d in ("submission", "code", "logs"):
        (tmp_path / "attempt" / d).mkdir(parents=True)
    return tmp_path / "attempt"


def _refusal(attempt: Path) -> str:
    out = CompetitionTask().outputs(attempt)
    assert "submission.csv" not in out, "a hostile submission was read"
    return out[REFUSED].decode()


def test_symlinked_submission_to_the_answers_is_refused(attempt: Path) -> None:
    os.symlink("../../private/answers.csv", attempt / "submission" / "submission.csv")
    assert (attempt / "submission" / "submission.csv").read_text().startswith("id,y")  # the link works for a follower
    assert "symlink" in _refusal(attempt)
    with pytest.raises(InvalidSubmissionError, match="symlink"):
        read_submission(attempt / "submission" / "submission.csv")


def test_symlinked_parent_directory_is_refused(attempt: Path) -> None:
    os.symlink(str(attempt.parent / "private"), attempt / "submission" / "sub")
    with pytest.raises(UnsafeFile, match="not a plain directory"):
        read_beneath(attempt / "submission", "sub/answers.csv", 1 << 20)
    with pytest.raises(UnsafeFile, match="beneath"):
        read_beneath(attempt / "submission", "../../private/answers.csv", 1 << 20)


def test_hard_link_to_an_outside_file_is_refused(attempt: Path) -> None:
    os.link(attempt.parent / "private" / "answers.csv", attempt / "submission" / "submission.csv")
    assert "hard link" in _refusal(attempt)


def test_fifo_does_not_hang_the_reader(attempt: Path) -> None:
    os.mkfifo(attempt / "submission" / "submission.csv")
    done: dict[str, str] = {}
    t = threading.Thread(target=lambda: done.setdefault("why", _refusal(attempt)), daemon=True)
    t.start()
    t.join(20)
    assert "FIFO" in done.get("why", ""), "the reader hung on a FIFO"
    with pytest.raises(InvalidSubmissionError, match="FIFO"):
        read_submission(attempt / "submission" / "submission.csv")


def test_device_and_socket_are_refused(attempt: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(attempt / "submission" / "submission.csv"))
    assert "socket" in _refusal(attempt)
    sock.close()
    if os.getuid() == 0:
        os.mknod(attempt / "code" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        with pytest.raises(UnsafeFile, match="character device"):
            read_beneath(attempt / "code", "null", 1 << 20)


def test_two_gb_submission_is_refused_without_reading_it(attempt: Path) -> None:
    with open(attempt / "submission" / "submission.csv", "wb") as f:
        f.truncate(TWO_GB)  # sparse: 2 GB to stat, nothing on disk
    assert "over the" in _refusal(attempt)


def test_copy_and_tar_never_follow_links_or_write_outside(attempt: Path, tmp_path: Path) -> None:
    sub = attempt / "submission"
    (sub / "ok.csv").write_text("id,y\n")
    (sub / "deep").mkdir()
    (sub / "deep" / "x.txt").write_text("x")
    os.symlink("../../private/answers.csv", sub / "link.csv")
    os.symlink(str(tmp_path / "private"), sub / "dirlink")
    os.link(tmp_path / "private" / "answers.csv", sub / "hard.csv")
    os.mkfifo(sub / "fifo")
    dest = tmp_path / "copy"
    report = copy_tree(sub, dest, max_files=100, max_bytes=1 << 20)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["deep/x.txt", "ok.csv"]
    assert set(report.refused) == {"link.csv", "dirlink", "hard.csv", "fifo"}, report.refused
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    # the caps hold
    capped = copy_tree(sub, tmp_path / "capped", max_files=1, max_bytes=1 << 20)
    assert capped.files == 1
    # a tarball with links, '..' names and devices unpacks to regular files only, inside dest
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar_tree(sub, tar, 100, 1 << 20)
        for name, kind in (("../escape.txt", tarfile.REGTYPE), ("sym", tarfile.SYMTYPE), ("dev", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
    out = tmp_path / "unpacked"
    rep = extract_tar(io.BytesIO(buf.getvalue()), out, 100, 1 << 20)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["deep/x.txt", "ok.csv"]
    assert not (tmp_path / "escape.txt").exists() and len(rep.refused) == 3
    assert isinstance(report, CopyReport)


# ---------------------------------------------------------------- probes in both sandboxes

HOSTILE = Path(__file__).parent / "agents" / "hostile"


@pytest.fixture
def kind(sandbox_kind: str) -> str:
    """The sandbox under attack: local, then docker."""
    return sandbox_kind


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """public/ and private/ side by side, as in the data cache, and an attempt dir in a store."""
    public, private = tmp_path / "data" / "public", tmp_path / "data" / "private"
    public.mkdir(parents=True)
    private.mkdir()
    (public / "sample_submission.csv").write_text("id,y\n1,0.5\n2,0.5\n")
    (private / "answers.csv").write_text("id,y\n1,1\n2,0\n")
    return {"public": public, "private": private, "attempt": tmp_path / "store" / "run" / "artifacts" / "a"}


def run_probe(kind: str, layout: dict[str, Path], probe: str, **job_fields) -> tuple[Any, Any, dict]:  # type: ignore[no-untyped-def]
    from harness.sandbox.backends import get_sandbox
    from harness.sandbox.base import SandboxJob
    from harness.spec import Resources

    env = {"PROBE": probe, **job_fields.pop("env", {})}
    job = SandboxJob(run_id="hostile", attempt_id=f"{probe}-{uuid.uuid4().hex[:6]}", command=["python3", "/home/agent/probe.py"],
                     agent_dir=HOSTILE, data_dir=layout["public"], attempt_dir=layout["attempt"], env=env,
                     resources=job_fields.pop("resources", Resources(cpus=1, memory_gb=1, disk_gb=0.05)),
                     time_limit_s=job_fields.pop("time_limit_s", 60), **job_fields)
    result = get_sandbox(kind).run(job)
    probe_file = job.logs_dir / "probe.json"
    report = json.loads(probe_file.read_text()) if probe_file.is_file() else {}
    return job, result, report


def _snapshot(paths: list[Path]) -> dict[str, tuple[int, float]]:
    out = {}
    for p in paths:
        st = p.stat()
        out[str(p)] = (st.st_size, st.st_mtime)
    return out


def test_no_privilege_no_mount_no_write_outside(kind: str, layout: dict[str, Path]) -> None:
    import numpy

    import harness.grading
    from harness.sandbox.paths import HARNESS_PKG

    watched = [layout["public"] / "sample_submission.csv", HOSTILE / "probe.py", Path(harness.grading.__file__),
               Path(numpy.__file__), Path("/usr/bin/env"), HARNESS_PKG / "competitions" / "__init__.py"]
    before = _snapshot(watched)
    job, result, report = run_probe(kind, layout, "escalate")
    assert result.status == "succeeded", (result, job.log_path.read_text()[-2000:])
    notes = report.pop("notes", [])  # commands missing from an image count as failed; shown if anything won
    assert len(report) > 10, job.log_path.read_text()[-2000:]
    won = {k: v for k, v in report.items() if v is not False}
    assert won == {}, f"the agent managed: {won} ({notes})"
    assert _snapshot(watched) == before, "a file outside the attempt changed"


@pytest.mark.parametrize("probe", ["symlink", "parentdir", "hardlink", "fifo", "big"])
def test_cheating_submissions_score_nothing(kind: str, layout: dict[str, Path], probe: str) -> None:
    job, result, _ = run_probe(kind, layout, probe)
    assert result.status == "succeeded", (result, job.log_path.read_text()[-2000:])
    out = CompetitionTask().outputs(job.attempt_dir)
    assert "submission.csv" not in out, f"{probe}: the grader would read {out['submission.csv'][:80]!r}"
    assert not any(p.is_symlink() or p.stat().st_nlink > 1 for p in job.submission_dir.rglob("*")
                   if p.is_symlink() or p.is_file()) or kind == "docker"  # local: only plain files are copied out


def test_a_flood_of_output_keeps_head_and_tail(kind: str, layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.sandbox.base as base

    monkeypatch.setattr(base, "LOG_HEAD_BYTES", 1024**2)
    monkeypatch.setattr(base, "LOG_TAIL_BYTES", 1024**2)
    job, result, _ = run_probe(kind, layout, "stdout", env={"PROBE_MB": "40"})
    assert result.status == "succeeded", result
    size = job.log_path.stat().st_size
    assert size < 3 * 1024**2, f"agent.log is {size} bytes after 40 MB of output"
    log = job.log_path.read_bytes()
    assert log.startswith(b"FIRST-LINE") and b"LAST-LINE" in log[-4096:] and b"bytes of output cut here" in log


def test_filling_the_disk_stops_at_the_cap(kind: str, layout: dict[str, Path]) -> None:
    job, result, _ = run_probe(kind, layout, "fill")
    assert result.status == "agent_failed", (result, job.log_path.read_text()[-1000:])
    assert "disk" in (result.error or "") and "resources.disk_gb" in (result.error or ""), result.error
    assert sum(p.stat().st_size for p in job.attempt_dir.rglob("*") if p.is_file()) < 400 * 1024**2
    if kind == "local":  # /tmp is capped too
        job, result, _ = run_probe(kind, layout, "fill", env={"PROBE_DIR": "/tmp"})
        assert result.status == "agent_failed" and "/tmp" in (result.error or ""), result


def test_granted_network_never_reaches_the_host_loopback(kind: str, layout: dict[str, Path]) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: [server.accept() for _ in range(4)], daemon=True).start()
    socket.create_connection(("127.0.0.1", port), timeout=3).close()  # the control: reachable from the host
    targets = [f"127.0.0.1:{port}", f"10.0.2.2:{port}", f"172.17.0.1:{port}"]
    job, result, report = run_probe(kind, layout, "net", network=True, env={"PROBE_CONNECT": ",".join(targets)})
    server.close()
    assert result.status == "succeeded", (result, job.log_path.read_text()[-1000:])
    assert {k: v for k, v in report.items() if k.startswith("connect") and v} == {}, report
    # it has a network of its own (slirp4netns' tap0 locally, docker's bridge veth), not the host's
    assert set(report["interfaces"]) - {"lo"}, report
    assert not {"docker0"} & set(report["interfaces"]), report


# ---------------------------------------------------------------- every ending cleans up


def _attempt_cgroups(marker: str) -> list[str]:
    from harness.sandbox.local import CGROUP_ROOT, CONTROLLERS

    return [f"{c}/{n}" for c in CONTROLLERS if (CGROUP_ROOT / c).is_dir()
            for n in os.listdir(CGROUP_ROOT / c) if marker in n]


def _child_running(tmp_path: Path, kind: str, attempt_id: str, time_limit_s: float) -> subprocess.Popen[bytes]:
    """A separate process (a driver) running one sleeper attempt in `kind`."""
    child = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from pathlib import Path; from tests.test_sandbox import make_job; "
             f"from harness.sandbox.backends import get_sandbox; "
             f"get_sandbox({kind!r}).run(make_job(Path({str(tmp_path)!r}), 'sleeper', attempt_id={attempt_id!r}, time_limit_s={time_limit_s}))")
    return subprocess.Popen([sys.executable, "-c", child], cwd=REPO)


def test_no_cgroup_remains_after_timeout_cancel_or_a_killed_driver(tmp_path: Path) -> None:
    from harness.sandbox.local import cgroup_usable, collect_leftover_cgroups
    from tests.test_sandbox import make_job

    if not cgroup_usable():
        pytest.skip("no writable cgroup v1 hierarchy here")
    from harness.sandbox.backends import get_sandbox

    marker = f"cg-{uuid.uuid4().hex[:8]}"
    job = make_job(tmp_path / "t", "sleeper", attempt_id=f"{marker}-timeout", time_limit_s=1)
    assert get_sandbox("local").run(job).status == "timeout"
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    job = make_job(tmp_path / "c", "sleeper", attempt_id=f"{marker}-cancel", time_limit_s=60)
    assert get_sandbox("local").run(job, cancel).status == "cancelled"
    assert _attempt_cgroups(marker) == []
    # a driver killed mid-attempt leaves its cgroups; the next local sandbox process collects them
    proc = _child_running(tmp_path / "k", "local", f"{marker}-killed", 120)
    try:
        for _ in range(240):
            if _attempt_cgroups(f"{marker}-killed"):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the child never made its cgroups")
    finally:
        proc.kill()
        proc.wait()
    removed = collect_leftover_cgroups()
    assert any(marker in r for r in removed), removed
    assert _attempt_cgroups(marker) == []


def test_a_container_dies_on_time_without_its_driver(tmp_path: Path) -> None:
    need_docker()
    from harness.sandbox.docker.images import docker_client
    from harness.sandbox.docker import _SELF_KILL_S, collect_leftovers

    client = docker_client()
    attempt = f"orphan-{uuid.uuid4().hex[:8]}"
    label = {"label": f"harness.attempt_id={attempt}"}
    proc = _child_running(tmp_path, "docker", attempt, 2)
    try:
        for _ in range(240):
            if client.containers.list(filters={**label, "status": "running"}):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the child never started its container")
    finally:
        proc.kill()
        proc.wait()
    t0 = time.monotonic()
    while client.containers.list(filters={**label, "status": "running"}) and time.monotonic() - t0 < 2 + _SELF_KILL_S + 60:
        time.sleep(0.5)
    assert client.containers.list(filters={**label, "status": "running"}) == [], "the container outlived its time limit"
    scratch = tmp_path / ".scratch"  # the killed driver's scratch dirs (a tmpfs when harness is root)
    if client.containers.list(all=True, filters=label):
        assert [p.name for p in scratch.iterdir()] and str(tmp_path) in Path("/proc/self/mountinfo").read_text() or os.geteuid() != 0
    # else a docker sandbox of a concurrent test file (another xdist worker) already collected this orphan,
    # its creator being gone: then its scratch went with it, as the assertions below check
    collect_leftovers(client)
    assert not client.containers.list(all=True, filters=label)
    assert not list(scratch.iterdir()) and str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


# ---------------------------------------------------------------- one driver per run; network is granted


def test_two_concurrent_resumes_exactly_one_runs(harness_dirs: dict, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.spec import RunSpec, RunState
    from harness.store import RunStore

    rs = RunStore(store, "locked-run")
    rs.write_state(RunState(run_id=rs.run_id, spec=RunSpec(competitions=["penguin-species"], agent="slow", lite=True),
                            status="cancelled"))
    env = {**os.environ, "HARNESS_AGENTS_PATH": str(Path(__file__).parent / "agents"), "SLOW_SECONDS": "8",
           "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--resume", rs.run_id, "--store", str(store)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    refused = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert codes[0] == 0 and len(refused) == 1, outs
    assert ("driven by" in refused[0] or "driver" in refused[0]) and "Traceback" not in refused[0], refused[0]
    assert refused[0].count("error:") == 1, refused[0]  # one message (the console may wrap it)
    df = rs.attempts()
    assert list(df["status"]) == ["succeeded"], df


def test_network_is_the_operators_grant(harness_dirs: dict, store: Path, tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    (agents / "wants-net").mkdir(parents=True)
    (agents / "wants-net" / "config.yaml").write_text("command: 'true'\nnetwork: true\nresources: {cpus: 1, memory_gb: 0.5}\n")
    env = {**os.environ, "HARNESS_AGENTS_PATH": str(agents), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-c", "penguin-species", "--lite", "--agent", "wants-net",
                           "--store", str(store)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "--allow-network" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("error:") == 1, proc.stderr


# ---------------------------------------------------------------- bad inputs: one line each


def _cli_line(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400", **env})


@pytest.mark.parametrize("case", ["store-file", "store-proc", "data-file", "inf-limit", "inf-cli", "huge-memory"])
def test_bad_inputs_are_one_line(case: str, harness_dirs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    agents = tmp_path / "agents"
    (agents / "inf").mkdir(parents=True)
    (agents / "inf" / "config.yaml").write_text("command: 'true'\ntime_limit_s: .inf\n")
    (agents / "huge").mkdir(parents=True)
    (agents / "huge" / "config.yaml").write_text("command: 'true'\nresources: {memory_gb: 100000}\ncolour: blue\n")
    base = ["run", "-c", "penguin-species", "--lite", "--store", str(tmp_path / "runs")]
    env = {"HARNESS_AGENTS_PATH": str(agents)}
    args, expect = {
        "store-file": (["run", "-c", "penguin-species", "--lite", "--store", str(a_file)], "run store"),
        "store-proc": (["run", "-c", "penguin-species", "--lite", "--store", "/proc/harness-x"], "run store"),
        "data-file": (base, "data dir"),
        "inf-limit": ([*base, "--agent", "inf"], "time_limit_s"),
        "inf-cli": ([*base, "--time-limit", "inf"], "time_limit_s"),
        "huge-memory": ([*base, "--agent", "huge"], "memory_gb"),
    }[case]
    if case == "data-file":
        env["HARNESS_DATA_DIR"] = str(a_file)
    if case == "huge-memory":  # the check needs Ray's view of the nodes: the session's Ray, in this process
        import harness
        from harness.orchestrator import RunError

        request.getfixturevalue("ray_local")
        monkeypatch.setenv("HARNESS_AGENTS_PATH", str(agents))
        with pytest.raises(RunError) as refused:
            harness.run(["penguin-species"], agent="huge", lite=True, store=tmp_path / "runs")
        code, err = 2, "error: " + str(refused.value)
        assert "colour" in capsys.readouterr().err  # the unknown key is warned about
    else:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        res = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
        code, err = res.exit_code, res.output
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.exception
    assert code != 0, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert expect in err, err


def test_a_corrupt_compacted_table_is_rebuilt_from_the_attempt_files(tmp_path: Path) -> None:
    from harness.spec import AttemptResult
    from harness.store import RunStore

    rs = RunStore(tmp_path, "r")
    rs.write_attempt(AttemptResult(run_id="r", attempt_id="a", task_kind="competition", competition_id="c", agent_id="x",
                                   seed=0, sandbox="local", isolation="bwrap", status="succeeded",
                                   invalid_reason="y" * 100_000))
    rs.compact()
    (rs.dir / "attempts.parquet").write_bytes(b"PAR1 torn")
    df = rs.attempts()
    assert list(df["attempt_id"]) == ["a"] and len(df["invalid_reason"][0]) <= 500
    rs.compact()
    assert len(RunStore(tmp_path, "r").attempts()) == 1


def test_a_two_gb_submission_through_a_run_keeps_memory_bounded(ray_local, store: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import resource
    import shutil

    import harness

    agent = tmp_path / "agents" / "big-sub"
    agent.mkdir(parents=True)
    shutil.copy(HOSTILE / "probe.py", agent / "probe.py")
    (agent / "config.yaml").write_text("command: python3 /home/agent/probe.py\nenv_vars: {PROBE: big}\n"
                                       "resources: {cpus: 1, memory_gb: 1, disk_gb: 3}\ntime_limit_s: 60\n")
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(tmp_path / "agents"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = harness.run(["penguin-species"], agent="big-sub", lite=True, store=store)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    row = result.attempts.iloc[0]
    assert row["status"] == "succeeded" and not row["valid_submission"], row.to_dict()
    assert "over the" in row["invalid_reason"] and len(row["invalid_reason"]) <= 500, row["invalid_reason"]
    assert grown_mb < 512, f"the driver grew by {grown_mb:.0f} MB"


def test_a_run_whose_attempts_all_failed_for_infrastructure_reads_failed(ray_local, store: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import harness

    src = REPO / "harness/competitions/breast-cancer-diagnosis"
    broken = tmp_path / "comps" / "broken-source"
    broken.mkdir(parents=True)
    for f in ("grade.py", "description.md", "leaderboard.csv"):
        (broken / f).write_text((src / f).read_text())
    (broken / "config.yaml").write_text((src / "config.yaml").read_text().replace("breast-cancer-diagnosis", "broken-source"))
    (broken / "prepare.py").write_text("def prepare(raw, public, private):\n    raise OSError('unreadable')\n")
    monkeypatch.setenv("HARNESS_COMPETITIONS_PATH", str(tmp_path / "comps"))
    result = harness.run(["broken-source"], agent="dummy", store=store, max_retries=0)
    assert list(result.attempts["status"]) == ["infra_error"]
    assert result.status == "failed" and result.summary.status == "failed"


def test_mountinfo_names_neither_the_data_cache_nor_the_answers(kind: str, ray_local, store: Path,  # type: ignore[no-untyped-def]
                                                               harness_dirs: dict, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent reads its own /proc/self/mountinfo: /home/data comes from an opaque view, so no
    path it shows leads to the data cache, where the answers sit beside the public files."""
    import harness

    agent = tmp_path / "agents" / "mountinfo"
    agent.mkdir(parents=True)
    (agent / "config.yaml").write_text(
        "command: [sh, -c, 'cat /proc/self/mountinfo > /home/logs/mountinfo.txt; "
        "cp /home/data/sample_submission.csv /home/submission/submission.csv']\n")
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(tmp_path / "agents"))
    result = harness.run(["breast-cancer-diagnosis"], agent="mountinfo", lite=True, store=store, sandbox=kind)
    row = result.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["valid_submission"], row.to_dict()
    shown = (store / result.run_id / "artifacts" / row["attempt_id"] / "logs" / "mountinfo.txt").read_text()
    sources = {line.split()[3]: line.split()[4] for line in shown.splitlines()}
    data_source = next(src for src, dest in sources.items() if dest == "/home/data")
    assert "/views/" in data_source, shown
    assert str(harness_dirs["data"]) not in shown and "/prepared/" not in shown and "private" not in shown, shown
    assert str(store) not in shown, shown  # nor the store: writable dirs and instructions come from no store path
