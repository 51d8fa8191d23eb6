"""The HTTP service end to end: a real Ray Serve on 127.0.0.1, the real harness.Client,
real runs of the dummy agent on the lite breast-cancer-diagnosis.

The tests of this module share one server (and run in file order): a full run
through HTTP, two users who cannot see each other's runs, every bad input the
service must refuse, 50 concurrent GETs during a run, cancel, a crash and
resume, and a restart that still serves the earlier runs. Only Serve is shut
down at the end; the session's Ray belongs to every test module.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import Client, HarnessAPIError
from harness.registry import read_competition_set
from tests.procs import free_port

REPO = Path(__file__).resolve().parent.parent

COMP = "breast-cancer-diagnosis"
TOKENS = {"alice-token-0001": "alice", "bob-token-0002": "bob", "carol-token-0003": "carol", "dave-token-0004": "dave"}
CAP = 1  # concurrent runs per user on the test server

pytestmark = pytest.mark.timeout(600)


class Server:
    def __init__(self, store: Path, tokens: Path, port: int) -> None:
        self.store, self.tokens, self.port = store, tokens, port
        self.url = f"http://127.0.0.1:{port}"
        self.shared: dict[str, Any] = {}

    def start(self) -> None:
        from harness.serve.app import start

        assert start("127.0.0.1", self.port, store=str(self.store), tokens=str(self.tokens), max_runs_per_user=CAP) == self.url

    def client(self, user: str) -> Client:
        token = {v: k for k, v in TOKENS.items()}[user]
        return Client(self.url, token=token, timeout_s=60)

    def raw(self, user: str | None = "alice") -> httpx.Client:
        headers = {"authorization": f"Bearer {({v: k for k, v in TOKENS.items()})[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def server(ray_local: Any, harness_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    (root / "tokens.json").write_text(json.dumps(TOKENS))
    srv = Server(root / "runs", root / "tokens.json", free_port())
    srv.start()
    yield srv
    import ray

    from harness.serve.app import stop

    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == "harness" and actor["name"].startswith("run:"):
            try:
                ray.kill(ray.get_actor(actor["name"], namespace="harness"))
            except ValueError:
                pass
    stop()


def _wait_status(client: Client, run_id: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run(run_id)
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}, wanted {statuses}"
        time.sleep(0.3)


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body["message"], str) and len(body["message"]) > 15, body
    return body


# ---------------------------------------------------------------------- tests


def test_health_and_catalogue(server: Server) -> None:
    with server.raw(None) as anon:
        health = anon.get("/healthz").json()
        assert health["status"] == "ok" and health["auth"] is True and health["max_runs_per_user"] == CAP
        assert anon.get("/docs").status_code == 200 and "/runs/{run_id}/summary" in anon.get("/openapi.json").json()["paths"]
        assert "Bearer" in _error(anon.get("/competitions"), 401)["message"]
    with server.raw(None) as wrong:
        assert "unknown bearer token" in _error(wrong.get("/runs", headers={"authorization": "Bearer not-a-token"}), 401)["message"]
        # the token is checked before the body is read: no parse error (nor a buffer) for a client without one
        for headers in ({"authorization": "Bearer not-a-token"}, {}):
            bad = wrong.post("/runs", content=b"{not json", headers={**headers, "content-type": "application/json"})
            assert _error(bad, 401)["error"] == "unauthorized"
            assert _error(wrong.post("/grade", content=b"x" * 1000, headers=headers), 401)["error"] == "unauthorized"
    alice = server.client("alice")
    assert COMP in alice.list_competitions()
    assert "dummy" in alice.list_agents()
    assert isinstance(alice.list_technique_tasks(), list)
    assert alice.list_runs() == []


def test_full_run_over_http(server: Server, tmp_path: Path) -> None:
    alice = server.client("alice")
    with server.raw("alice") as http:
        resp = http.post("/runs", json={"competitions": [COMP], "agent_id": "dummy", "lite": True, "seeds": 2,
                                        "max_concurrency": 1})
        assert resp.status_code == 202, resp.text
        assert set(resp.json()) == {"run_id", "status"} and resp.json()["status"] == "queued"
        run_id = resp.json()["run_id"]
        server.shared["alice_run"] = run_id
        assert alice.get_run(run_id)["status"] in ("queued", "running")

        # 50 concurrent GETs while the run executes, every one answered 200
        def get(i: int) -> int:
            path = [f"/runs/{run_id}", f"/runs/{run_id}/summary", "/runs", f"/runs/{run_id}/artifacts"][i % 4]
            return http.get(path).status_code

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(get, range(50)))
        assert codes == [200] * 50
        assert alice.get_run(run_id)["status"] in ("queued", "running"), "the run ended before the burst; it proves nothing"

        # the per-user cap
        with pytest.raises(HarnessAPIError) as e:
            alice.run(competitions=[COMP], agent_id="dummy", lite=True)
        assert e.value.status == 429 and f"cap is {CAP}" in e.value.message

    final = alice.wait_for_completion(run_id, timeout=300, poll_s=0.5)
    assert final["status"] == "completed" and final["done"] == final["total"] == 2 and not final["live"]

    summary = alice.get_run_summary(run_id)
    assert summary["run_id"] == run_id and summary["eval_dir"] == "eval" and summary["files"] == [f"{COMP}_metrics.json"]
    assert {"grading_report.json", "summary.json", "attempts.parquet"} <= set(summary["report_files"])
    assert summary["by_status"] == {"succeeded": 2} and summary["valid_submission_rate"] == 1.0
    assert summary["competitions"][0]["competition_id"] == COMP

    df = alice.get_results(run_id)
    assert len(df) == 2 and set(df["status"]) == {"succeeded"} and set(df["seed"]) == {0, 1}
    assert df["score"].notna().all() and str(df["started_at"].dtype).startswith("datetime64")
    with server.raw("alice") as http:
        rows = http.get(f"/runs/{run_id}/results").json()
        assert [r["attempt_id"] for r in rows] == list(df["attempt_id"])

    files = {f["path"]: f["size"] for f in alice.list_artifacts(run_id)}
    sub = f"artifacts/{COMP}__dummy__s0/submission/submission.csv"
    assert sub in files and f"artifacts/{COMP}__dummy__s0/logs/agent.log" in files
    data = alice.get_artifact(run_id, sub)
    assert data == (server.store / run_id / sub).read_bytes() and len(data) == files[sub]
    got = alice.download_artifacts(run_id, tmp_path / "out")
    assert (got / sub).read_bytes() == data and (got / "summary.json").is_file()
    assert json.loads(alice.get_artifact(run_id, "grading_report.json"))


def test_users_cannot_see_each_others_runs(server: Server, tmp_path: Path) -> None:
    alice, bob = server.client("alice"), server.client("bob")
    alice_run = server.shared["alice_run"]
    bob_run = bob.run(competitions=COMP, agent_id="dummy", lite=True, time_limit_s=120)
    server.shared["bob_run"] = bob_run
    assert [r["run_id"] for r in bob.list_runs()] == [bob_run]
    assert bob_run not in {r["run_id"] for r in alice.list_runs()}
    for who, other in ((bob, alice_run), (alice, bob_run)):
        for call in (who.get_run, who.get_run_summary, who.get_results, who.list_artifacts, who.cancel, who.resume,
                     lambda rid, who=who: who.get_artifact(rid, "run.json"),
                     lambda rid, who=who: who.download_artifacts(rid, tmp_path)):
            with pytest.raises(HarnessAPIError) as e:
                call(other)
            assert e.value.status == 404 and other in e.value.message, e.value
    bob.cancel(bob_run)  # leave the CPUs to the next tests
    assert _wait_status(bob, bob_run, {"cancelled", "completed"})["live"] is False


def test_bad_inputs_get_json_errors(server: Server) -> None:
    alice = server.client("alice")
    run_id = server.shared["alice_run"]
    with pytest.raises(HarnessAPIError) as e:
        alice.run(competitions=["no-such-competition"], agent_id="dummy")
    assert e.value.status == 400 and "no-such-competition" in e.value.message
    with pytest.raises(HarnessAPIError) as e:
        alice.run(competitions=[COMP], agent_id="no-such-agent")
    assert e.value.status == 400 and "no-such-agent" in e.value.message
    with pytest.raises(HarnessAPIError) as e:
        alice.run(competition_set="experiments/splits/no-such-split.txt")
    assert e.value.status == 400 and "no-such-split" in e.value.message
    with pytest.raises(HarnessAPIError) as e:  # the server never reads files outside its splits folder
        alice.run(competition_set="/etc/passwd")
    assert e.value.status == 400 and "root" not in e.value.message

    with server.raw("alice") as http:
        body = _error(http.post("/runs", content=b'{"agent_id": "dummy", ', headers={"content-type": "application/json"}), 422)
        assert "not valid JSON" in body["message"]
        assert _error(http.post("/runs", json={"competitions": [COMP], "seeds": "many"}), 422)["field"] == "seeds"
        assert _error(http.post("/runs", json={"competitions": [COMP], "seeds": 0}), 422)["field"] == "seeds"
        assert _error(http.post("/runs", json={"competitions": [COMP], "lite": {"x": 1}}), 422)["field"] == "lite"
        body = _error(http.post("/runs", json={"competitions": [COMP], "agnet_id": "dummy"}), 422)
        assert body["field"] == "agnet_id" and "agnet_id" in body["message"]
        assert _error(http.post("/runs", json=[1, 2]), 422)["message"]
        assert _error(http.get("/runs", params={"limit": "lots"}), 422)["field"] == "limit"
        assert _error(http.get(f"/runs/{run_id}/results", params={"format": "xml"}), 422)["field"] == "format"

        # oversized: announced by Content-Length, and streamed without one
        big = json.dumps({"competitions": ["x" * 100] * 20_000}).encode()
        assert "limit" in _error(http.post("/runs", content=big, headers={"content-type": "application/json"}), 413)["message"]
        chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
        _error(http.post("/runs", content=chunks, headers={"content-type": "application/json"}), 413)

        # artifact paths that leave the run directory
        run_dir = server.store / run_id
        outside = server.store.parent / "secret.txt"
        outside.write_text("not yours")
        (run_dir / "artifacts" / "leak.txt").symlink_to(outside)
        (run_dir / "artifacts" / "linkdir").symlink_to(server.store.parent, target_is_directory=True)
        for path in ("%2e%2e/secret.txt", "%2E%2E/%2E%2E/secret.txt", "artifacts/%2e%2e/%2e%2e/run.json/../secret.txt",
                     "/etc/passwd", "%2Fetc%2Fpasswd", "artifacts/leak.txt", "artifacts/linkdir/secret.txt",
                     "artifacts", "no/such/file"):
            assert _error(http.get(f"/runs/{run_id}/artifacts/{path}"), 404)["error"] == "not_found", path
        assert _error(http.get(f"/runs/{run_id}/artifacts//etc/passwd"), 404)
        listed = {f["path"] for f in alice.list_artifacts(run_id)}
        assert not any("leak" in p or "linkdir" in p for p in listed)
        names = zipfile.ZipFile(BytesIO(http.get(f"/runs/{run_id}/artifacts.zip").content)).namelist()
        assert names and not any("leak" in n or "linkdir" in n or "secret" in n for n in names)
        (run_dir / "artifacts" / "leak.txt").unlink()
        (run_dir / "artifacts" / "linkdir").unlink()

        # unknown runs, ids that try to escape, endpoints and methods
        assert "no-such-run" in _error(http.get("/runs/no-such-run"), 404)["message"]
        _error(http.get("/runs/%2e%2e/summary"), 404)
        _error(http.get("/runs/.hidden"), 404)
        assert "/docs" in _error(http.get("/nope"), 404)["message"]
        _error(http.delete(f"/runs/{run_id}"), 405)


def test_cancel_then_crash_and_resume(server: Server) -> None:
    import ray

    alice = server.client("alice")
    # cancel: a long run stopped while it executes; recorded as cancelled and resumable
    run_id = alice.run(competitions=[COMP], agent_id="dummy", lite=True, seeds=30, max_concurrency=1)
    _wait_status(alice, run_id, {"running"})
    assert alice.cancel(run_id) == {"run_id": run_id, "status": "cancelling"}
    final = alice.wait_for_completion(run_id, timeout=120, poll_s=0.5)
    assert final["status"] == "cancelled" and final["resumable"] and final["done"] < 30
    with pytest.raises(HarnessAPIError) as e:
        alice.cancel(run_id)
    assert e.value.status == 409

    # a crash: the run's driver actor dies mid-run; the run reads as interrupted and resumes
    run_id = alice.run(competitions=[COMP], agent_id="dummy", lite=True, max_concurrency=1)
    _wait_status(alice, run_id, {"running"})
    ray.kill(ray.get_actor(f"run:{run_id}", namespace="harness"))
    run = _wait_status(alice, run_id, {"interrupted"}, timeout=60)
    assert run["resumable"] and not run["live"]
    assert alice.resume(run_id) == run_id
    final = alice.wait_for_completion(run_id, timeout=300, poll_s=0.5)
    assert final["status"] == "completed" and final["done"] == 1
    assert list(alice.get_results(run_id)["status"]) == ["succeeded"]
    with pytest.raises(HarnessAPIError) as e:
        alice.resume(run_id)
    assert e.value.status == 409 and "completed" in e.value.message
    server.shared["resumed_run"] = run_id


def test_seed_sdk_calls(server: Server) -> None:
    """The calls of the user's SDK sketch, as written (cancelled at once to spare the CPUs)."""
    carol, dave = server.client("carol"), server.client("dave")
    run_id = carol.run(competitions="experiments/splits/low.txt", agent_id="dummy", lite=True)
    run = carol.get_run(run_id)
    assert run["spec"]["lite"] and run["spec"]["competitions"] == read_competition_set("low")
    summary = carol.get_run_summary(run_id)
    assert {"run_id", "eval_dir", "files"} <= set(summary)
    carol.cancel(run_id)
    lite_run = dave.run_lite_existing_tasks()
    assert dave.get_run(lite_run)["spec"]["agent"] == "dummy"
    dave.cancel(lite_run)
    assert [r["run_id"] for r in carol.list_runs()] == [run_id]
    assert [r["run_id"] for r in dave.list_runs()] == [lite_run]
    _wait_status(carol, run_id, {"cancelled", "completed"})
    _wait_status(dave, lite_run, {"cancelled", "completed"})


def test_technique_level_reaches_the_run(server: Server) -> None:
    """technique_level through the SDK and POST /runs: the stored RunSpec is the one the CLI/harness.run
    door builds from the same fields, and the attempts that ran are the hard-level tasks."""
    from harness.registry import registry_for
    from harness.runspec import RunInput, to_run_spec
    from harness.spec import RunSpec, Settings, technique_level_of

    carol = server.client("carol")
    with server.raw("carol") as http:
        body = _error(http.post("/runs", json={"competitions": [COMP], "technique_tasks": ["imbalance"],
                                               "technique_level": "extreme"}), 422)
        assert body["field"] == "technique_level"
    run_id = carol.run(competitions=[COMP], agent_id="dummy", lite=True, technique_tasks=["imbalance"],
                       technique_level="hard")
    final = _wait_status(carol, run_id, {"completed", "failed"}, timeout=300)
    assert final["status"] == "completed" and final["total"] == 1, final
    stored = RunSpec.model_validate(final["spec"])
    direct = to_run_spec(registry_for(Settings.from_env()), RunInput(
        competitions=[COMP], agent="dummy", lite=True, technique_tasks=["imbalance"], technique_level="hard"))
    assert stored.technique_level == "hard"
    assert stored.model_copy(update={"owner": None, "max_concurrency": None}) == direct
    ids = list(carol.get_results(run_id)["attempt_id"])
    assert ids == [f"imbalance.hard.{COMP}__dummy__s0"] and technique_level_of(ids[0]) == "hard"


def test_restart_still_serves_earlier_runs(server: Server) -> None:
    from harness.serve.app import stop

    alice = server.client("alice")
    stop()
    with pytest.raises(HarnessAPIError) as e:
        alice.list_runs()
    assert e.value.status == 0 and "harness serve" in e.value.message
    server.start()
    ids = [r["run_id"] for r in alice.list_runs()]
    assert server.shared["alice_run"] in ids and server.shared["resumed_run"] in ids
    run_id = server.shared["alice_run"]
    assert alice.get_run(run_id)["status"] == "completed"
    assert alice.get_run_summary(run_id)["by_status"] == {"succeeded": 2}
    assert len(alice.get_results(run_id)) == 2
    assert alice.get_artifact(run_id, f"artifacts/{COMP}__dummy__s1/submission/submission.csv")
    with pytest.raises(HarnessAPIError) as e:
        server.client("bob").get_run(run_id)
    assert e.value.status == 404


def test_refuses_non_loopback_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.serve.app import ServiceConfigError, start

    monkeypatch.delenv("HARNESS_API_TOKENS", raising=False)
    port = free_port()
    with pytest.raises(ServiceConfigError, match="HARNESS_API_TOKENS"):
        start("0.0.0.0", port)
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_API_TOKENS"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "serve", "--host", "0.0.0.0", "--port", str(port)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "refusing to listen on 0.0.0.0" in " ".join(proc.stderr.split())
    with socket.socket() as s:  # nothing was bound
        s.bind(("0.0.0.0", port))
