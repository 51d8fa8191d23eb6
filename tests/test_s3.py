"""Results on object storage, against a real S3-compatible server (moto in server mode on
127.0.0.1, a subprocess killed by PID): `harness run --store s3://...` writes rows, artifacts
and reports to the bucket and nothing to the local store; `harness runs` / `harness report`
read them from a machine that has no copy; a driver SIGKILLed mid-run resumes to exactly one
row per attempt; bad store URIs fail in one line before anything runs."""

from __future__ import annotations

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

from harness.objstore import StoreError
from harness.store import open_store

pytest.importorskip("moto", reason="moto[server] (the test extra) runs the local S3 server")
boto3 = pytest.importorskip("boto3")

REPO = Path(__file__).resolve().parent.parent
TEST_AGENTS = Path(__file__).parent / "agents"
BUCKET = "harness-results"
CREDS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
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
        log.close()


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


def _another_machine(tmp_path: Path, name: str) -> dict[str, str]:
    """A work dir with no mirror yet: what a reader elsewhere sees comes from the bucket alone."""
    d = tmp_path / name
    d.mkdir()
    return {"HARNESS_WORK_DIR": str(d)}


@pytest.mark.slow
def test_run_report_and_resume_on_s3(harness_dirs: dict[str, Path], s3: S3, aws_env: None, tmp_path: Path) -> None:
    """Rows, artifacts and reports land in the bucket, none in the local store; `runs`, `report`
    and a no-op `--resume` work from a machine with no copy of the run."""
    uri = s3.uri("team/runs")
    out, _ = _done(_cli("run", "-c", "breast-cancer-diagnosis", "-c", "diabetes-progression", "--agent", "dummy",
                        "--store", uri, "--json"))
    run_id = out.splitlines()[0].strip()
    assert json.loads(out[out.index("\n{") + 1:])["run_id"] == run_id
    keys = set(s3.keys(f"team/runs/{run_id}/"))
    base = f"team/runs/{run_id}"
    for name in ("run.json", "attempts.parquet", "summary.json", "grading_report.json"):
        assert f"{base}/{name}" in keys, (name, sorted(keys))
    aids = ["breast-cancer-diagnosis__dummy__s0", "diabetes-progression__dummy__s0"]
    for aid in aids:
        assert f"{base}/attempts/{aid}.parquet" in keys
        for art in ("submission/submission.csv", "logs/agent.log", "code/run.py", "competition_report.json"):
            assert f"{base}/artifacts/{aid}/{art}" in keys, art
    table = s3.table(f"{base}/attempts.parquet")
    assert sorted(table["attempt_id"]) == aids and (table["status"] == "succeeded").all() and table["valid_submission"].all()
    report = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"{base}/grading_report.json")["Body"].read())
    assert report["total_runs"] == 2 and report["total_valid_submissions"] == 2
    assert not (harness_dirs["runs"] / run_id).exists(), "the default local store was written to"
    assert not (REPO / "runs" / run_id).exists()

    listing, _ = _done(_cli("runs", "--store", uri, "--json", env=_another_machine(tmp_path, "m1")), 300)
    (entry,) = [r for r in json.loads(listing) if r["run_id"] == run_id]
    assert entry["status"] == "completed" and entry["done"] == 2
    summary, _ = _done(_cli("report", run_id, "--store", uri, "--json", env=_another_machine(tmp_path, "m2")), 300)
    assert json.loads(summary)["valid_submission_rate"] == 1.0

    # a resume of the finished run, on another machine: nothing runs again, still one row per attempt
    _done(_cli("run", "--resume", run_id, "--store", uri, env=_another_machine(tmp_path, "m3")))
    again = s3.table(f"{base}/attempts.parquet")
    assert sorted(again["attempt_id"]) == aids
    assert list(again.sort_values("attempt_id")["ended_at"]) == list(table.sort_values("attempt_id")["ended_at"])


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_on_s3(harness_dirs: dict[str, Path], s3: S3, aws_env: None,
                                                 tmp_path: Path) -> None:
    """Every attempt finished before a SIGKILL of the driver is in the bucket (row and artifacts);
    `--resume` then ends with exactly one row per attempt."""
    uri = s3.uri("crash")
    proc = _cli("run", "--store", uri, "--agent", "slow", "-c", "diabetes-progression", "--seeds", "4",
                "--max-concurrency", "1", env={"SLOW_SECONDS": "1"})
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""
    rows = f"crash/{run_id}/attempts/"
    deadline = time.monotonic() + 300
    while len([k for k in s3.keys(rows) if k.endswith(".parquet")]) < 1:
        assert time.monotonic() < deadline and proc.poll() is None, "no row reached the bucket"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [k.rsplit("/", 1)[1].removesuffix(".parquet") for k in s3.keys(rows)]
    assert 1 <= len(before) < 4
    for aid in before:  # a row in the bucket has its artifacts beside it
        assert f"crash/{run_id}/artifacts/{aid}/submission/submission.csv" in s3.keys(f"crash/{run_id}/artifacts/{aid}/")
    state = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"crash/{run_id}/run.json")["Body"].read())
    assert state["status"] == "running"  # the killed driver never wrote its end

    _done(_cli("run", "--resume", run_id, "--store", uri, env={"SLOW_SECONDS": "1"}))
    table = s3.table(f"crash/{run_id}/attempts.parquet")
    assert len(table) == 4 and table["attempt_id"].is_unique and (table["status"] == "succeeded").all()
    assert len(s3.keys(rows)) == 4
    state = json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"crash/{run_id}/run.json")["Body"].read())
    assert state["status"] == "completed" and state["done"] == 4


def test_bad_store_uris_fail_in_one_line(harness_dirs: dict[str, Path], s3: S3, aws_env: None) -> None:
    """An unknown scheme, a closed port, a missing bucket, an unknown option: one line naming the
    store (never its secrets) and the fix, before any attempt runs."""
    closed = _free_port()
    cases = [
        ("nosuchfs://bucket/runs", "unknown or unusable store scheme 'nosuchfs'"),
        (f"s3://{BUCKET}/p?endpoint_override=127.0.0.1:{closed}&scheme=http&access_key=AK&secret_key=TOPSECRET", "nothing answers"),
        (s3.uri("p", bucket="no-such-bucket"), "the bucket 'no-such-bucket' does not exist"),
        (s3.uri("p") + "&colour=blue", "unknown query parameter(s) colour"),
    ]
    for uri, said in cases:
        with pytest.raises(StoreError) as e:
            open_store(uri, write=True)
        msg = str(e.value)
        assert said in msg and "\n" not in msg and msg.startswith("--store ") and "TOPSECRET" not in msg, msg
    # the command line: exit 2, one line on stderr, nothing written anywhere
    local_before = set(harness_dirs["runs"].iterdir())
    proc = _cli("run", "-c", "diabetes-progression", "--agent", "dummy", "--store", s3.uri("p", bucket="no-such-bucket"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert err.strip().count("\n") == 0 and "error: --store s3://no-such-bucket/p" in err and "Traceback" not in err
    assert out == "" and set(harness_dirs["runs"].iterdir()) == local_before
