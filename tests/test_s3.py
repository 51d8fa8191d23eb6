"""Results on object storage, against a real S3-compatible server (moto in server mode on
127.0.0.1, a subprocess killed by PID): `harness run --store s3://...` writes rows, artifacts
and reports to the bucket and nothing to the local store; `harness runs` / `harness report`
read them from a machine that has no copy; a driver SIGKILLed mid-run resumes to exactly one
row per attempt; bad store URIs fail in one line before anything runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest

from harness.objstore import StoreError, shown_store
from harness.store import open_store
from tests.procs import free_port

pytest.importorskip("moto", reason="moto[server] (the test extra) runs the local S3 server")
boto3 = pytest.importorskip("boto3")

REPO = Path(__file__).resolve().parent.parent
TEST_AGENTS = Path(__file__).parent / "agents"
BUCKET = "harness-results"
CREDS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}


class S3:
    """The moto server of this module: its endpoint, a boto3 client, store URIs."""

    def __init__(self, port: int) -> None:
        self.endpoint = f"127.0.0.1:{port}"
        self.client = boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                                   aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
                                   aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"])

    def uri(self, prefix: str, bucket: str = BUCKET) -> str:
        return f"s3://{bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def table(self, key: str) -> Any:
        return pq.read_table(io.BytesIO(self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())).to_pandas()


@contextlib.contextmanager
def _moto(log_dir: Path, env: dict[str, str] | None = None) -> Iterator[S3]:
    """A moto S3 server on a free loopback port with BUCKET created; killed by PID at the end."""
    port = free_port()
    with open(log_dir / f"moto-{port}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"moto did not start (exit {proc.poll()})") from None
                    time.sleep(0.1)
            server = S3(port)
            server.client.create_bucket(Bucket=BUCKET)
            yield server
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    with _moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO,
                            env={**os.environ, **CREDS, "HARNESS_AGENTS_PATH": str(TEST_AGENTS), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out, err


@pytest.fixture(autouse=True)
def _restore_work_dir() -> Iterator[None]:
    saved = os.environ.get("HARNESS_WORK_DIR")
    yield
    if saved is not None:
        os.environ["HARNESS_WORK_DIR"] = saved


def _another_machine(tmp_path: Path, name: str) -> dict[str, str]:
    """A work dir with no mirror yet: what a reader elsewhere sees comes from the bucket alone."""
    d = tmp_path / name
    d.mkdir()
    return {"HARNESS_WORK_DIR": str(d)}


@pytest.mark.slow
def test_run_killed_resumed_and_read_back_on_s3(harness_dirs: dict[str, Path], s3: S3, aws_env: None,
                                                tmp_path: Path) -> None:
    """`harness run --store s3://...`: every attempt finished before a SIGKILL of the driver is in
    the bucket (row and artifacts); `--resume` ends with exactly one row per attempt and the
    reports; nothing is written to the local store; `runs`, `report` and a no-op `--resume`
    work from a machine with no copy of the run."""
    uri = s3.uri("team/runs")
    proc = _cli("run", "--store", uri, "--agent", "slow", "-c", "diabetes-progression", "--seeds", "3",
                "--max-concurrency", "1", env={"SLOW_SECONDS": "2"})
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""
    base = f"team/runs/{run_id}"
    deadline = time.monotonic() + 300
    while not [k for k in s3.keys(f"{base}/attempts/") if k.endswith(".parquet")]:
        assert time.monotonic() < deadline and proc.poll() is None, "no row reached the bucket"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [k.rsplit("/", 1)[1].removesuffix(".parquet") for k in s3.keys(f"{base}/attempts/")]
    assert 1 <= len(before) < 3
    for aid in before:  # a row in the bucket has its artifacts beside it
        assert f"{base}/artifacts/{aid}/submission/submission.csv" in s3.keys(f"{base}/artifacts/{aid}/")
    state = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"{base}/run.json")["Body"].read())
    assert state["status"] == "running"  # the killed driver never wrote its end

    _done(_cli("run", "--resume", run_id, "--store", uri, env={"SLOW_SECONDS": "0"}))
    keys = set(s3.keys(f"{base}/"))
    for name in ("run.json", "attempts.parquet", "summary.json", "grading_report.json"):
        assert f"{base}/{name}" in keys, (name, sorted(keys))
    aids = [f"diabetes-progression__slow__s{i}" for i in range(3)]
    for aid in aids:
        assert f"{base}/attempts/{aid}.parquet" in keys
        for art in ("submission/submission.csv", "logs/agent.log", "competition_report.json"):
            assert f"{base}/artifacts/{aid}/{art}" in keys, (aid, art)
    table = s3.table(f"{base}/attempts.parquet")
    assert sorted(table["attempt_id"]) == aids and (table["status"] == "succeeded").all() and table["valid_submission"].all()
    kept = s3.table(f"{base}/attempts/{before[0]}.parquet")  # a row recorded before the kill was kept, not redone
    assert table.set_index("attempt_id").loc[before[0], "ended_at"] == kept["ended_at"].iloc[0]
    report = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"{base}/grading_report.json")["Body"].read())
    assert report["total_runs"] == 3 and report["total_valid_submissions"] == 3
    state = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"{base}/run.json")["Body"].read())
    assert state["status"] == "completed" and state["done"] == 3
    assert not (harness_dirs["runs"] / run_id).exists() and not (REPO / "runs" / run_id).exists(), "a local store was written"

    listing, _ = _done(_cli("runs", "--store", uri, "--json", env=_another_machine(tmp_path, "m1")), 300)
    (entry,) = [r for r in json.loads(listing) if r["run_id"] == run_id]
    assert entry["status"] == "completed" and entry["done"] == 3
    summary, _ = _done(_cli("report", run_id, "--store", uri, "--json", env=_another_machine(tmp_path, "m2")), 300)
    assert json.loads(summary)["valid_submission_rate"] == 1.0
    _view_reads_the_bucket(uri, run_id, aids[0], tmp_path / "m4")
    # a resume of the finished run on another machine: nothing runs again, still one row per attempt
    _done(_cli("run", "--resume", run_id, "--store", uri, env=_another_machine(tmp_path, "m3")))
    again = s3.table(f"{base}/attempts.parquet")
    assert sorted(again["attempt_id"]) == aids
    assert list(again.sort_values("attempt_id")["ended_at"]) == list(table.sort_values("attempt_id")["ended_at"])


def _view_reads_the_bucket(uri: str, run_id: str, aid: str, work: Path) -> None:
    """`harness view --store s3://...` (its app on a real uvicorn on 127.0.0.1), from an empty mirror:
    the runs page lists the run, the attempt page shows it and its log is then served."""
    import threading
    import urllib.request

    import uvicorn

    from harness.ui import standalone_app

    os.environ["HARNESS_WORK_DIR"] = str(work)  # a fresh mirror (the fixtures' value is restored below)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(standalone_app(uri), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        def get(path: str) -> str:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
                        return str(r.read().decode())
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

        assert run_id in get("/ui/")
        assert aid in get(f"/ui/runs/{run_id}/attempts/{aid}")
        assert (work / "store-mirrors").is_dir()
        assert get(f"/ui/runs/{run_id}/files/artifacts/{aid}/submission/submission.csv").startswith("id,")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_bad_store_uris_fail_in_one_line(harness_dirs: dict[str, Path], s3: S3, aws_env: None) -> None:
    """An unknown scheme, a closed port, a missing bucket, an unknown option: one line naming the
    store (never its secrets) and the fix, before any attempt runs."""
    closed = free_port()
    cases = [
        ("nosuchfs://bucket/runs", "unknown or unusable store scheme 'nosuchfs'"),
        (f"s3://{BUCKET}/p?endpoint_override=127.0.0.1:{closed}&scheme=http&access_key=AK&secret_key=TOPSECRET", "nothing answers"),
        (s3.uri("p", bucket="no-such-bucket"), "the bucket 'no-such-bucket' does not exist"),
        (s3.uri("p") + "&colour=blue", "unknown query parameter(s) colour"),
        # an AWS secret key with an unencoded '/': not parsed as the bucket "def@..." (and never shown)
        (f"s3://AKIA:TOP/XYZZY@{BUCKET}/p", "hold a '/': write it as %2F"),
        ("nosuchfs://AK:XYZZY@host/p", "unknown or unusable store scheme 'nosuchfs'"),
    ]
    for uri, said in cases:
        with pytest.raises(StoreError) as e:
            open_store(uri, write=True)
        msg = str(e.value)
        assert said in msg and "\n" not in msg and msg.startswith("--store ") and "TOPSECRET" not in msg, msg
        assert "XYZZY" not in msg and "XYZZY" not in shown_store(uri) and "TOPSECRET" not in shown_store(uri)  # what `harness serve` prints and the API names
    # the command line: exit 2, one line on stderr, nothing written anywhere
    local_before = set(harness_dirs["runs"].iterdir())
    proc = _cli("run", "-c", "diabetes-progression", "--agent", "dummy", "--store", s3.uri("p", bucket="no-such-bucket"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert err.strip().count("\n") == 0 and "error: --store s3://no-such-bucket/p" in err and "Traceback" not in err
    assert out == "" and set(harness_dirs["runs"].iterdir()) == local_before


def test_refused_credentials_fail_in_one_line(harness_dirs: dict[str, Path], aws_env: None, tmp_path: Path) -> None:
    """A server that checks keys (moto with IAM auth on after its first action) and a key it does
    not know: one line saying so, without the secret."""
    with _moto(tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "1"}) as strict:
        with pytest.raises(StoreError) as e:
            open_store(strict.uri("p") + "&access_key=AKIDUNKNOWN&secret_key=NOTTHEKEY", write=True)
    msg = str(e.value)
    assert "refused the credentials" in msg and "AWS_ACCESS_KEY_ID" in msg and "NOTTHEKEY" not in msg and "\n" not in msg


def test_hostile_artifacts_and_keys(harness_dirs: dict[str, Path], s3: S3, aws_env: None, tmp_path: Path) -> None:
    """What an agent left (symlinks, a hard link, a FIFO) is not uploaded; a key in the bucket
    with `..` in it is not written outside the mirror."""
    from harness.objstore import open_remote
    from harness.store import RunStore

    outside = tmp_path / "secret.txt"
    outside.write_text("host secret")
    art = tmp_path / "art"
    (art / "logs").mkdir(parents=True)
    (art / "logs" / "agent.log").write_text("fine")
    (art / "link").symlink_to(outside)
    (art / "dirlink").symlink_to(tmp_path)
    os.link(outside, art / "hard")
    os.mkfifo(art / "fifo")
    # names no object key can have: not UTF-8, and a path past S3's 1024-byte key limit
    with open(os.path.join(os.fsencode(art), b"bad-\xff-name"), "w") as f:
        f.write("x")
    deep = art / "/".join(["d" * 200] * 5)
    deep.mkdir(parents=True)
    (deep / "too-long.txt").write_text("x")
    remote = open_remote(s3.uri("hostile"))
    report = remote.upload_tree(art, "r1/artifacts/a1")  # left out, not fatal
    assert set(s3.keys("hostile/")) == {"hostile/r1/artifacts/a1/logs/agent.log"}, s3.keys("hostile/")
    assert {"link", "hard", "fifo", "dirlink"} <= set(report.refused)
    assert "not UTF-8" in report.refused["bad-\\xff-name"], report.refused
    assert any("longer than 1024 bytes" in why for why in report.refused.values()), report.refused

    s3.client.put_object(Bucket=BUCKET, Key="hostile/r1/attempts/../../../escaped.parquet", Body=b"x")
    s3.client.put_object(Bucket=BUCKET, Key="hostile/r1/run.json", Body=b"{}")
    rs = RunStore(s3.uri("hostile"), "r1")
    assert (rs.dir / "run.json").read_bytes() == b"{}"
    assert not list(rs.root.parent.rglob("escaped.parquet")) and not (tmp_path / "escaped.parquet").exists()
    assert rs.artifacts_dir("a1").joinpath("logs", "agent.log").read_text() == "fine"
    # a mirror folder that became a symlink (an attempt folder is the agent's) is not written through
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (rs.dir / "artifacts" / "a2").symlink_to(elsewhere)
    s3.client.put_object(Bucket=BUCKET, Key="hostile/r1/artifacts/a2/logs/agent.log", Body=b"x")
    rs.artifacts_dir("a2")
    assert list(elsewhere.iterdir()) == []


def test_a_retry_replaces_the_earlier_try_and_unsent_rows_are_resent(harness_dirs: dict[str, Path], s3: S3,
                                                                      aws_env: None) -> None:
    """A second try's artifacts replace the first try's in the bucket (no file of try 1 stays
    beside try 2's row); a row recorded in the mirror but never uploaded (the driver died
    in between) is sent by the next driver even when the bucket holds an older row of that attempt."""
    import shutil

    from harness.spec import AttemptResult, utcnow
    from harness.store import RunStore

    uri, prefix = s3.uri("retry"), "retry/r1"

    def row(status: str) -> AttemptResult:
        now = utcnow()
        return AttemptResult(run_id="r1", attempt_id="a1", task_kind="competition", competition_id="diabetes-progression",
                             agent_id="dummy", seed=0, sandbox="local", isolation="bwrap", status=status,
                             started_at=now, ended_at=now)

    rs = RunStore(uri, "r1")
    lock = rs.claim_driver()
    first = rs.artifacts_dir("a1")
    (first / "code").mkdir(parents=True)
    (first / "code" / "try1.py").write_text("1")
    rs.write_attempt(row("cancelled"))
    rs.publish_attempt("a1", replace=True)
    assert f"{prefix}/artifacts/a1/code/try1.py" in s3.keys(prefix)
    shutil.rmtree(first)  # the attempt runs again in a clean folder
    (first / "code").mkdir(parents=True)
    # a reader on this machine (a dashboard page) while the driver works in that folder: try 1's files stay out
    RunStore(uri, "r1").artifacts_dir("a1")
    assert not (first / "code" / "try1.py").exists()
    (first / "code" / "try2.py").write_text("2")
    rs.write_attempt(row("succeeded"))
    rs.publish_attempt("a1", replace=True)
    keys = s3.keys(prefix)
    assert f"{prefix}/artifacts/a1/code/try2.py" in keys and f"{prefix}/artifacts/a1/code/try1.py" not in keys, keys
    assert list(s3.table(f"{prefix}/attempts/a1.parquet")["status"]) == ["succeeded"]

    # recorded here, then the driver dies before the upload: the bucket still has the older row
    rs.write_attempt(row("agent_failed"))
    lock.release()
    resumed = RunStore(uri, "r1")
    resumed.claim_driver().release()
    assert list(s3.table(f"{prefix}/attempts/a1.parquet")["status"]) == ["agent_failed"]
    assert not (resumed.dir / ".unsent" / "a1").exists()


@pytest.mark.slow
def test_an_attempt_away_from_the_driver_uploads_its_artifacts_itself(ray_local: Any, s3: S3, tmp_path: Path) -> None:
    """An attempt on a node that is not the driver's (here: a context naming another driver node)
    writes its artifacts to the bucket itself, with the credentials in the store URI (the Ray
    workers' environment has none), and ships no tarball back."""
    from harness.orchestrator import _attempt_task, _bundle_agent, _Context, plan_attempts
    from harness.registry import load_registry
    from harness.runspec import to_run_spec
    from harness.spec import Settings

    settings = Settings.from_env()
    registry = load_registry(settings)
    agent = registry.agent("dummy")
    spec = to_run_spec(registry, {"competitions": ["diabetes-progression"], "agent": "dummy"})
    (attempt,) = plan_attempts(spec, "away-run", registry)
    bundle, sha = _bundle_agent(agent)
    elsewhere = "f" * 56  # a Ray node id that is not this one
    uri = s3.uri("away") + f"&access_key={CREDS['AWS_ACCESS_KEY_ID']}&secret_key={CREDS['AWS_SECRET_ACCESS_KEY']}"
    driver_store = tmp_path / "driver-store"
    ctx = _Context(settings=settings.model_copy(update={"driver_node": elsewhere}), store_root=str(driver_store),
                   driver_node=elsewhere, agent_bundle=bundle, agent_bundle_sha=sha, agent_env={}, agent=agent,
                   store_uri=uri)
    outcome = ray_local.get(_attempt_task.remote(attempt, ctx, None), timeout=600)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.artifacts_tar is None and not driver_store.exists()
    keys = s3.keys(f"away/away-run/artifacts/{attempt.attempt_id}/")
    for art in ("submission/submission.csv", "logs/agent.log", "code/run.py"):
        assert f"away/away-run/artifacts/{attempt.attempt_id}/{art}" in keys, keys


def test_any_pyarrow_filesystem_uri(harness_dirs: dict[str, Path], tmp_path: Path) -> None:
    """A store URI pyarrow knows other than s3:// (its in-memory `mock://` filesystem, which lives
    in this process): run.json and a row written through one mirror are read back through another."""
    import shutil

    from harness.spec import AttemptResult, RunSpec, RunState, utcnow
    from harness.store import RunStore, list_runs

    uri = "mock:///results/runs"
    assert open_store(uri, write=True) == uri
    rs = RunStore(uri, "r1")
    rs.write_state(RunState(run_id="r1", spec=RunSpec(competitions=["diabetes-progression"], agent="dummy")))
    now = utcnow()
    rs.write_attempt(AttemptResult(run_id="r1", attempt_id="a1", task_kind="competition", competition_id="diabetes-progression",
                                   agent_id="dummy", seed=0, sandbox="local", isolation="bwrap", status="succeeded",
                                   started_at=now, ended_at=now))
    rs.publish_attempt("a1")
    shutil.rmtree(rs.root)  # the mirror is only a cache
    assert [s.run_id for s in list_runs(uri)] == ["r1"]
    again = RunStore(uri, "r1")
    assert again.read_state().spec.competitions == ["diabetes-progression"]
    assert list(again.attempts()["attempt_id"]) == ["a1"]
