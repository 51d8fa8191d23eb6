"""Every SDK call of the user's documents (shared seeds 000 and 001), as written there,
imports included, against a live server (real Ray Serve on 127.0.0.1, real runs).

The snippets below are copied from the seeds; only the server's address differs:
the literal `"http://localhost:8000"` becomes the test server's URL, and `Client()`
finds it in $HARNESS_URL (its token in $HARNESS_API_TOKEN). They run one after the
other in one namespace, as in the seed's notebook. The first lite run is waited for and
its results checked; a run the seed does not wait for is cancelled once its snippet is
done, to spare the CPUs. `coding-agent` and `aide/dev`, which the seeds name, are the real
LLM agents; the server reads its provider from a .env file ($HARNESS_ENV_FILE) naming the
scripted OpenAI-compatible fake (tests/llm_fake.py), as an operator's .env names a real one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import Client
from harness.registry import read_competition_set
from tests.llm_fake import FAKE_KEY, FakeOpenAI
from tests.procs import free_port

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

TOKENS = {"seed-user-token-1": "seeder"}
SEED_URL = "http://localhost:8000"

# ---- seed 000 (the demo shape, the SDK spec, the "Flow for the local demo")
DEMO = '''
from sdk.client import Client

client = Client("http://localhost:8000")
run_id = client.run_lite_existing_tasks()
summary = client.get_run_summary(run_id)
print(summary)
'''
SYS_PATH = '''
import sys
sys.path.append(".")

from sdk.client import Client
'''
RUN_LOW = '''
from sdk.client import Client

client = Client("http://localhost:8000")

run_id = client.run(
    competitions="experiments/splits/low.txt",
    agent_id="dummy",
    lite=True
)

summary = client.get_run_summary(run_id)
print(summary)
'''
CHOOSE = [
    'client.run(competitions="experiments/splits/dev.txt")',
    'client.run(agent_id="coding-agent")',
    'client.run(lite=True)',
]
RESULTS = '''
summary = client.get_run_summary(run_id)
'''
ARTIFACTS = '''
client.download_submission(run_id)
client.download_metrics(run_id)
'''
CODING_AGENT = '''
from sdk.client import Client

client = Client("http://localhost:8000")

run_id = client.run(
    competitions="experiments/splits/low.txt",
    agent_id="coding-agent",
    lite=True
)

summary = client.get_run_summary(run_id)
print("Metrics:", summary["files"])
'''
RUN_ID = '''
run_id = client.run(
    competitions="experiments/splits/low.txt",
    agent_id="dummy",
    lite=True,
)
print("Run ID:", run_id)
'''
SUMMARY_FILES = '''
summary = client.get_run_summary(run_id)
print(summary["files"])
'''
LIST_RUNS = '''
for r in client.list_runs():
    print(r["run_id"])
'''
FLOW = '''
from sdk.client import Client

client = Client("http://localhost:8000")

print("Competitions:", client.list_competitions())

run_id = client.run(
    competitions="experiments/splits/low.txt",
    agent_id="dummy",
    lite=True,
)

print("Run ID:", run_id)

summary = client.get_run_summary(run_id)
print("Summary:", summary)
'''
# ---- seed 001 (the README: two modes, the SDK reference)
OPTION_A = '''
run_id = client.run(
    agent_id="aide/dev",
    competition_set="experiments/splits/dev.txt",
    lite=True,
)
'''
OPTION_B = '''
run_id = client.run(
    agent_id="aide/dev",
    competition_set="experiments/splits/dev.txt",
    lite=True,
    technique_tasks=True,
    tasks=["imbalance", "missing", "encoding"],
)
'''
REFERENCE = '''
from sdk import Client
client = Client()  # defaults to localhost:8000

# Start a run
run_id = client.run(agent_id="aide/dev", competition_set="experiments/splits/dev.txt", lite=True)

# Wait for completion
result = client.wait_for_completion(run_id)

# Get details
run = client.get_run(run_id)
summary = client.get_run_summary(run_id)
'''


def _respond(path: str, body: dict[str, Any]) -> Any:
    """The fake provider's answers. AIDE (the Responses API): every draft copies the sample
    submission, every review reports it; coding-agent (chat completions): it stops at once."""
    if not path.endswith("/responses"):
        return "Nothing to do here."
    if body.get("tools"):
        return {"tool": "submit_review", "arguments": {"is_bug": False, "summary": "ran", "lower_is_better": False,
                                                      "metric": 0.5}}
    return AIDE_DRAFT


AIDE_DRAFT = """Submit the sample submission.

```python
import shutil
shutil.copy("./input/sample_submission.csv", "./working/submission.csv")
print("validation metric: 0.5")
```
"""


class Live:
    def __init__(self, url: str, fake: FakeOpenAI) -> None:
        self.url = url
        self.fake = fake
        self.admin = Client(url, token="seed-user-token-1")
        self.ns: dict[str, Any] = {}
        self.runs: list[str] = []

    def exec(self, code: str) -> dict[str, Any]:
        """Run one snippet in the shared namespace; returns it. The seed's URL is the live server's."""
        before = self.ns.get("run_id")
        exec(compile(code.replace(SEED_URL, self.url), "<seed>", "exec"), self.ns)
        if self.ns.get("run_id") and self.ns.get("run_id") != before:
            self.runs.append(self.ns["run_id"])
        return self.ns

    def settle(self, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.admin.get_run(run_id)
            if run["status"] in ("completed", "cancelled", "failed", "interrupted"):
                return run
            assert time.monotonic() < deadline, f"{run_id} is still {run['status']}"
            time.sleep(0.5)

    def cancel(self, run_id: str) -> dict[str, Any]:
        if self.admin.get_run(run_id)["status"] in ("queued", "running"):
            self.admin.cancel(run_id)
        return self.settle(run_id)


@pytest.fixture(scope="module")
def live(ray_local: Any, harness_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from harness.serve.app import start, stop

    root = tmp_path_factory.mktemp("seed-sdk")
    (root / "tokens.json").write_text(json.dumps(TOKENS))
    port = free_port()
    with FakeOpenAI(responder=_respond, model="gpt-4.1-mini") as fake, pytest.MonkeyPatch.context() as mp:
        # the operator's .env: the server (its replica and run drivers, on a Ray started before) reads the provider there
        (root / "provider.env").write_text(f"OPENAI_BASE_URL={fake.url}\nOPENAI_API_KEY={FAKE_KEY}\n")
        mp.setenv("HARNESS_ENV_FILE", str(root / "provider.env"))
        url = start("127.0.0.1", port, store=str(root / "runs"), tokens=str(root / "tokens.json"), max_runs_per_user=20)
        try:
            yield Live(url, fake)
        finally:
            stop()


@pytest.fixture
def seed_env(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HARNESS_URL", live.url)
    monkeypatch.setenv("HARNESS_API_TOKEN", "seed-user-token-1")
    monkeypatch.chdir(tmp_path)  # downloads land in the current directory
    return tmp_path


def test_docs_have_authorize(live: Live) -> None:
    schema = httpx.get(f"{live.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a token from the server's tokens file (HARNESS_API_TOKENS)"}
    assert {"bearer": []} in schema["paths"]["/runs"]["post"]["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"]
    assert httpx.get(f"{live.url}/docs").status_code == 200


def test_seed_000_demo_and_results(live: Live, seed_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = live.exec(DEMO)
    run_id = ns["run_id"]
    assert isinstance(ns["client"], Client) and ns["summary"]["run_id"] == run_id
    assert "run_id" in capsys.readouterr().out
    live.exec(SYS_PATH)
    assert live.settle(run_id)["status"] == "completed"

    # the result calls of the seed on the finished lite run
    ns["run_id"] = run_id
    live.exec(RESULTS)
    summary = ns["summary"]
    low = read_competition_set("low")
    assert summary["files"] == sorted(f"{c}_metrics.json" for c in low)
    assert summary["eval_dir"] == "eval" and not os.path.isabs(summary["eval_dir"])
    live.exec(ARTIFACTS)
    sub = seed_env / run_id / "submission"
    subs = sorted(p.relative_to(sub).as_posix() for p in sub.rglob("submission.csv"))
    assert subs == sorted(f"{c}__dummy__s0/submission.csv" for c in low)
    for c in low:  # the served metrics are the served rows
        metrics = json.loads((seed_env / run_id / "eval" / f"{c}_metrics.json").read_text())
        assert metrics["competition_id"] == c and metrics["attempts"] == 1 and metrics["valid_submission_rate"] == 1.0
        row = ns["client"].get_results(run_id).set_index("competition_id").loc[c]
        assert metrics["score_mean"] == pytest.approx(row["score"])
        raw = ns["client"].get_artifact(run_id, f"{summary['eval_dir']}/{c}_metrics.json")
        assert json.loads(raw) == metrics
    live.exec(SUMMARY_FILES)
    assert capsys.readouterr().out.strip() == str(summary["files"])


def test_seed_000_runs_and_listing(live: Live, seed_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live.exec(RUN_LOW)
    live.cancel(live.ns["run_id"])
    for call in CHOOSE:
        new = eval(call, live.ns)  # the seed's bare call, verbatim: it returns the new run's id
        assert isinstance(new, str) and new not in live.runs
        live.runs.append(new)
        run = live.cancel(new)
        if "dev.txt" in call:
            assert run["spec"]["competitions"] == read_competition_set("dev") and run["spec"]["lite"]
        if "coding-agent" in call:
            assert run["spec"]["agent"] == "coding-agent"
    live.exec(CODING_AGENT)
    assert "Metrics:" in capsys.readouterr().out
    live.cancel(live.ns["run_id"])
    live.exec(RUN_ID)
    assert f"Run ID: {live.ns['run_id']}" in capsys.readouterr().out
    live.cancel(live.ns["run_id"])
    live.exec(LIST_RUNS)
    printed = capsys.readouterr().out.split()
    assert set(live.runs) <= set(printed)
    live.exec(FLOW)
    out = capsys.readouterr().out
    assert "Competitions: [" in out and f"Run ID: {live.ns['run_id']}" in out and "Summary: {" in out
    live.cancel(live.ns["run_id"])


def test_seed_001_modes_and_reference(live: Live, seed_env: Path) -> None:
    live.exec("from sdk import Client\nclient = Client()")
    live.exec(OPTION_A)
    run = live.cancel(live.ns["run_id"])
    assert run["spec"]["agent"] == "aide/dev" and run["spec"]["competitions"] == read_competition_set("dev")
    live.exec(OPTION_B)
    run = live.cancel(live.ns["run_id"])
    assert sorted(run["spec"]["technique_tasks"]) == ["encoding", "imbalance", "missing"]
    live.exec(REFERENCE)
    ns = live.ns
    assert ns["result"]["status"] == "completed" and ns["run"]["status"] == "completed"
    assert ns["summary"]["files"] == sorted(f"{c}_metrics.json" for c in read_competition_set("dev"))
    # AIDE really ran against the provider, through the gateway (which alone holds the key)
    rows = ns["client"].get_results(ns["run_id"])
    assert len(rows) == len(read_competition_set("dev")) and (rows["llm_calls"] > 0).all(), rows.to_dict("records")
    assert live.fake.auth_seen == {f"Bearer {FAKE_KEY}"}
