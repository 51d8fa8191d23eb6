"""LLM agents end to end: the gateway (a real Ray actor, real Unix sockets, real aiohttp), the
forwarder inside real bubblewrap and docker sandboxes, coding-agent on a built-in competition,
accounting, limits, retries, provider outages, a hostile agent, AIDE's journal, hints, rollouts.
The LLM provider is the scripted fake in tests/llm_fake.py (the one fake allowed)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

import pytest

import harness
from harness.llm.trajectory import load_trajectory
from harness.store import RunStore
from tests.llm_fake import FAKE_KEY, FakeOpenAI

TEST_AGENTS = Path(__file__).parent / "agents"
REPO = Path(__file__).resolve().parent.parent
COMP = "breast-cancer-diagnosis"

SOLVE = textwrap.dedent("""\
    import os
    import pandas as pd
    data = os.environ["DATA_DIR"]
    train = pd.read_csv(f"{data}/train.csv")
    sample = pd.read_csv(f"{data}/sample_submission.csv")
    target = [c for c in sample.columns if c != sample.columns[0]][0]
    sample[target] = train[target].mode()[0]
    sample.to_csv(os.path.join(os.environ["SUBMISSION_DIR"], "submission.csv"), index=False)
    print("wrote", len(sample), "rows")
""")
#: a conversation: write the code, run it, validate, finish
SCRIPT: list[Any] = [
    {"tool": "write_file", "arguments": {"path": "solve.py", "content": SOLVE}},
    {"tool": "bash", "arguments": {"command": "python3 solve.py"}},
    {"tool": "bash", "arguments": {"command": "$VALIDATE_SUBMISSION"}},
    "The submission is written and valid.",
]


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """A factory: start a fake provider and point harness at it (as OPENAI_* in the driver's env)."""
    started: list[FakeOpenAI] = []
    monkeypatch.setenv("HARNESS_LLM_BACKOFF_S", "0.05")
    monkeypatch.setenv("HARNESS_ENV_FILE", str(tmp_path / "no.env"))

    def start(script: list[Any] = SCRIPT, **kw: Any) -> FakeOpenAI:
        fake = FakeOpenAI(script, **kw).__enter__()
        started.append(fake)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        return fake

    yield start
    for f in started:
        f.__exit__()


def _calls(store: Path, run_id: str, attempt_id: str) -> list[dict[str, Any]]:
    path = store / run_id / "artifacts" / attempt_id / "logs" / "llm_calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_coding_agent_solves_a_competition_in_bubblewrap(ray_local, provider, store: Path) -> None:
    """coding-agent/dev against the scripted provider: a valid submission, a trajectory that
    validates, the gateway's counts in the row, the real key only ever sent by the gateway."""
    fake = provider()
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store)
    row = res.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["valid_submission"], row.to_dict()
    assert row["isolation"] == "bwrap"
    art = store / res.run_id / "artifacts" / row["attempt_id"]
    traj = load_trajectory(art / "logs" / "trajectory.json")
    assert traj.model == "gpt-4o-mini" and traj.outcome.valid and traj.settings["max_steps"] == 8
    assert [s.role for s in traj.steps][:4] == ["system", "user", "assistant", "tool"]
    assert traj.steps[2].tool_calls[0].name == "write_file" and traj.steps[2].tokens is not None
    calls = _calls(store, res.run_id, row["attempt_id"])
    assert len(calls) == 4 == len(fake.requests) == row["llm_calls"]
    assert row["input_tokens"] == sum(c["usage"]["prompt_tokens"] for c in calls)
    assert row["output_tokens"] == 4 * 20
    # gpt-4o-mini: $0.15 / $0.60 per million tokens (prices.yaml)
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 0.15 + row["output_tokens"] * 0.6) / 1e6)
    assert pd_isna(row["llm_limit_reached"])
    assert fake.auth_seen == {f"Bearer {FAKE_KEY}"}, "only the gateway talks to the provider, with the real key"
    assert (art / "code" / "solve.py").read_text() == SOLVE
    llm = res.summary.llm
    assert llm is not None and llm["llm_calls_total"] == 4 and llm["tokens_total"] == row["input_tokens"] + row["output_tokens"]
    assert llm["cost_usd_total"] == pytest.approx(row["cost_usd"]) and llm["competitions"][0]["competition_id"] == COMP
    # the rollout export, from the CLI (jsonl and parquet) and the SDK (a real HTTP server)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "rollouts", res.run_id, "--store", str(store)],
                         capture_output=True, text=True, env=env, check=True).stdout
    record = json.loads(out.splitlines()[0])
    assert record["attempt"]["score"] == pytest.approx(row["score"]) and record["attempt"]["llm_calls"] == 4
    assert len(record["trajectory"]["steps"]) == len(traj.steps)
    from harness.llm.rollouts import collect_rollouts, rollouts_parquet

    table = pd.read_parquet(io.BytesIO(rollouts_parquet(collect_rollouts(RunStore(store, res.run_id)))))
    assert table["steps"].tolist() == [len(traj.steps)] and json.loads(table["trajectory"][0])["model"] == "gpt-4o-mini"
    with _api(store) as client:
        served = client.get_rollouts(res.run_id)
    assert served == [record]


@contextlib.contextmanager
def _api(store: Path) -> Iterator[harness.Client]:
    """The service's FastAPI app (no tokens: loopback only) under uvicorn on 127.0.0.1, and a Client for it."""
    import threading

    import uvicorn

    from harness.serve.app import create_app
    from harness.serve.auth import TokenTable
    from harness.serve.service import RunService

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(RunService(str(store), TokenTable(None))), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with harness.Client(f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def pd_isna(x: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(x))


def test_token_limit_cuts_the_agent_off_with_429(ray_local, provider, store: Path) -> None:
    """--token-limit 300: the first two calls use 140 + 160 tokens, the third gets the gateway's 429
    naming the limit; the agent stops there and the row says which limit was reached."""
    fake = provider()
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store, token_limit=300)
    row = res.attempts.iloc[0]
    assert row["llm_limit_reached"] == "tokens" and row["llm_calls"] == 2 == len(fake.requests)
    assert row["input_tokens"] + row["output_tokens"] == 300
    refused = _calls(store, res.run_id, row["attempt_id"])[-1]
    assert refused["status"] == 429 and "token limit of 300" in refused["error"]
    traj = load_trajectory(store / res.run_id / "artifacts" / row["attempt_id"] / "logs" / "trajectory.json")
    assert traj.steps[-1].model_extra["error"]["code"] == "tokens"  # type: ignore[index]
    assert "LLM limit reached (tokens)" in traj.outcome.reason


def test_provider_500_three_times_then_success_costs_nothing(ray_local, provider, store: Path) -> None:
    """The gateway retries a failing provider with backoff; the agent sees one answer and pays for one call."""
    fake = provider(fail_first=3)
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store)
    row = res.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["valid_submission"] and row["tries"] == 1
    calls = _calls(store, res.run_id, row["attempt_id"])
    assert calls[0]["tries"] == 4 and calls[0]["status"] == 200 and all(c["tries"] == 1 for c in calls[1:])
    assert len(fake.requests) == 4 + 3 and row["llm_calls"] == 4
    # the same bill as a provider that never failed: four answered calls
    assert row["input_tokens"] == sum(c["usage"]["prompt_tokens"] for c in calls) and row["output_tokens"] == 80


def test_provider_down_for_good_is_an_infra_error(ray_local, provider, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_LLM_RETRIES", "2")
    provider(down=True)
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store, max_retries=1)
    row = res.attempts.iloc[0]
    assert row["status"] == "infra_error" and row["tries"] == 2, row.to_dict()
    assert "LLM provider down" in row["error"] and "HTTP 500" in row["error"]
    assert row["llm_calls"] == 0 and row["cost_usd"] == 0


def test_hostile_agent_finds_no_key_and_no_network(ray_local, provider, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent with `llm: true` searches its environment, /proc of every process it can see and
    every readable file for the real key, and tries the provider directly and the internet: it finds
    and reaches nothing but the gateway, which answers it. After the attempt its token is dead."""
    fake = provider(["hello from the gateway"])
    host_port = fake.url.split("//")[1].split("/")[0]
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(TEST_AGENTS))
    monkeypatch.setenv("HARNESS_HUNT_KEY", FAKE_KEY[::-1])
    monkeypatch.setenv("HARNESS_HUNT_TARGET", host_port)
    res = harness.run([COMP], agent="llm-hostile", lite=True, store=store)
    row = res.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["isolation"] == "bwrap", row.to_dict()
    art = store / res.run_id / "artifacts" / row["attempt_id"]
    hunt = json.loads((art / "submission" / "hunt.json").read_text())
    assert hunt["answer"] == "hello from the gateway" and hunt["base_url"].startswith("http://127.0.0.1:")
    assert hunt["found"] == [] and hunt["reached"] == [], hunt
    assert len(hunt["pids"]) >= 2 and hunt["files_searched"] > 10  # it did look: the forwarder and itself, the files
    token = hunt["token"]
    assert token != FAKE_KEY and FAKE_KEY not in (art / "logs" / "agent.log").read_text()
    assert fake.auth_seen == {f"Bearer {FAKE_KEY}"} and row["llm_calls"] == 1
    # after the attempt: its socket is gone, and its token opens no other session of the node's gateway
    import ray

    from harness.llm.gateway import node_gateway
    from harness.llm.models import ProviderConfig, SessionSpec

    gw = node_gateway()
    info = ray.get(gw.open.remote(SessionSpec(attempt_id="other", provider=ProviderConfig(base_url=fake.url, api_key=FAKE_KEY),
                                              logs_dir=str(store))))
    try:
        status, body = _post_unix(str(Path(info.socket_dir) / info.socket_name), token)
        assert status == 401 and "wrong or missing API key" in body
        assert _post_unix(str(Path(info.socket_dir) / info.socket_name), info.token)[0] == 200
    finally:
        ray.get(gw.close.remote(info.session_id))
    assert not Path(info.socket_dir).exists()  # a closed session leaves no socket behind


def _post_unix(sock: str, token: str, body: dict[str, Any] | None = None, path: str = "/v1/chat/completions",
               method: str = "POST") -> tuple[int, str]:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(sock)

    c = Conn("gateway")
    c.request(method, path, None if method == "GET" else json.dumps(body or {"model": "gpt-4o-mini", "messages": []}),
              {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()


@pytest.mark.docker
def test_coding_agent_in_docker(ray_local, provider, store: Path) -> None:
    """The same agent in a container (network none): the socket mount and the forwarder work there too."""
    from tests.conftest import need_docker

    need_docker()
    fake = provider()
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store, sandbox="docker")
    row = res.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["valid_submission"] and row["isolation"] == "docker", row.to_dict()
    assert row["llm_calls"] == 4 == len(fake.requests) and row["cost_usd"] > 0
    load_trajectory(store / res.run_id / "artifacts" / row["attempt_id"] / "logs" / "trajectory.json")


CONSTANT_CODE = """Predict the prior for everyone.

```python
import pandas as pd
sample = pd.read_csv("./input/sample_submission.csv")
sample.to_csv("./working/submission.csv", index=False)
print("validation AUC: 0.5")
```
"""
MODEL_CODE = """A logistic regression on the standardised features, scored by 5-fold cross-validated AUC.

```python
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
train = pd.read_csv("./input/train.csv")
test = pd.read_csv("./input/test.csv")
sample = pd.read_csv("./input/sample_submission.csv")
target = sample.columns[1]
features = [c for c in train.columns if c not in ("id", target)]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
auc = cross_val_score(model, train[features], train[target], cv=5, scoring="roc_auc").mean()
model.fit(train[features], train[target])
sample[target] = model.predict_proba(test[features])[:, 1]
sample.to_csv("./working/submission.csv", index=False)
print(f"validation AUC: {auc:.4f}")
```
"""


def _aide_responder() -> Any:
    """Drafts alternate between a constant and a real model; reviews report the AUC the code printed."""
    import re

    count = {"code": 0}

    def respond(path: str, body: dict[str, Any]) -> Any:
        text = json.dumps(body.get("input") or body.get("messages"))
        if body.get("tools"):
            found = re.findall(r"validation AUC: ([0-9.]+)", text)
            return {"tool": "submit_review", "arguments": {"is_bug": not found, "summary": "ran", "lower_is_better": False,
                                                          "metric": float(found[-1]) if found else None}}
        count["code"] += 1
        return MODEL_CODE if count["code"] % 2 == 0 else CONSTANT_CODE

    return respond


@pytest.mark.slow
def test_aide_dev_runs_end_to_end_and_its_journal_becomes_a_trajectory(ray_local, provider, store: Path) -> None:
    """aideml itself (its own environment, harness/agents/aide/install.sh) as `aide/dev`: every call,
    OpenAI model names included, goes through the gateway (Responses API); the best node's own
    submission is the one submitted, its code kept, and the journal converted into a trajectory."""
    fake = provider(responder=_aide_responder(), model="gpt-4.1-mini")
    res = harness.run([COMP], agent="aide/dev", lite=True, store=store)
    row = res.attempts.iloc[0]
    art = store / res.run_id / "artifacts" / row["attempt_id"]
    assert row["status"] == "succeeded" and row["valid_submission"], (row.to_dict(), (art / "logs" / "agent.log").read_text()[-3000:])
    journal = json.loads((art / "logs" / "aide" / "0-exp" / "journal.json").read_text())
    assert len(journal["nodes"]) == 8
    from harness.llm.aide_journal import best_node

    best = best_node(journal)
    assert best is not None and best["metric"]["value"] > 0.9  # the real model's cross-validated AUC, not the constant's 0.5
    submitted = (art / "submission" / "submission.csv").read_bytes()
    assert submitted == (art / "logs" / "aide" / "submissions" / f"{best['id']}.csv").read_bytes()
    assert pd.read_csv(art / "submission" / "submission.csv").iloc[:, 1].nunique() > 1
    assert (art / "code" / "solution.py").read_text() == best["code"]
    traj = load_trajectory(art / "logs" / "trajectory.json")
    assert len(traj.steps) == 16 and traj.steps[0].tool_calls[0].name == "run_python"
    assert [s.metrics.get("metric") for s in traj.steps[1::2]].count(0.5) == 4
    # 8 drafts/improvements + 8 reviews, all through the gateway, all on the Responses API
    assert row["llm_calls"] == 16 == len(fake.requests) and row["input_tokens"] == 16 * 300
    assert {c["endpoint"] for c in _calls(store, res.run_id, row["attempt_id"])} == {"/responses"}


def test_hints_from_an_earlier_technique_run(ray_local, provider, store: Path) -> None:
    """--hints-from: the earlier run's technique-task outputs and graded checks for the same dataset (with
    `--hints rollouts` also its trajectories) land in the attempt's instructions.md; the row records the sources."""
    from harness.llm.trajectory import Step, Trajectory, write_trajectory

    tech = harness.run([COMP], agent="baseline", lite=True, store=store, technique_tasks=["imbalance"])
    trow = tech.attempts.iloc[0]
    assert trow["competition_id"] == COMP and trow["status"] == "succeeded", trow.to_dict()
    output = next((store / tech.run_id / "artifacts" / trow["attempt_id"] / "submission").glob("*.json"))
    # a rollout of that attempt, as an LLM agent would have left it
    write_trajectory(Trajectory(agent="baseline", steps=[Step(index=0, role="assistant", content="counted the classes: 212 vs 357")]),
                     store / tech.run_id / "artifacts" / trow["attempt_id"] / "logs" / "trajectory.json")
    provider()
    res = harness.run([COMP], agent="coding-agent/dev", lite=True, store=store, hints_from=tech.run_id, hints="rollouts")
    row = res.attempts.iloc[0]
    assert row["status"] == "succeeded" and row["valid_submission"], row.to_dict()
    assert json.loads(row["hints"]) == [f"{tech.run_id}/{trow['attempt_id']}+rollout"]
    text = (store / res.run_id / "artifacts" / row["attempt_id"] / "instructions.md").read_text()
    assert "# Hints from earlier technique tasks on this dataset" in text and "## imbalance (score" in text
    checks = pd.read_parquet(store / tech.run_id / "technique_grades.parquet")
    assert all(f"- {c}: " in text for c in checks["check"])
    assert f"Output `{output.name}`" in text and output.read_text().strip()[:60] in text
    assert "counted the classes: 212 vs 357" in text
    # the agent was told: its first prompt holds the hints
    traj = load_trajectory(store / res.run_id / "artifacts" / row["attempt_id"] / "logs" / "trajectory.json")
    assert "Hints from earlier technique tasks" in (traj.steps[1].content or "")
    assert pd_isna(trow["hints"])  # a run without --hints-from records none


def test_gateway_streams_counts_and_prices(ray_local, provider, tmp_path: Path) -> None:
    """Straight at the node's gateway actor: a streamed answer is relayed event by event and counted from
    its usage event (which the gateway asks for); without usage it is estimated; an unknown model costs null;
    embeddings and /v1/models are served; other paths and methods are refused."""
    import ray

    from harness.llm.gateway import node_gateway
    from harness.llm.models import LLMUsage, ProviderConfig, SessionSpec

    fake = provider(["streamed words here"])
    gw = node_gateway()
    spec = SessionSpec(attempt_id="s", provider=ProviderConfig(base_url=fake.url, api_key=FAKE_KEY), logs_dir=str(tmp_path))
    info = ray.get(gw.open.remote(spec))
    sock = str(Path(info.socket_dir) / info.socket_name)
    msg = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    status, body = _post_unix(sock, info.token, {"model": "gpt-4o-mini", **msg})
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    assert status == 200 and "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]) == "streamed words here"
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    usage: LLMUsage = ray.get(gw.usage.remote(info.session_id))
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 110, 20)
    fake.usage = False  # a provider that reports no usage: estimated, and marked so
    assert _post_unix(sock, info.token, {"model": "my-local-llama", **msg})[0] == 200
    assert _post_unix(sock, info.token, {"model": "text-embedding-3-small", "input": "x"}, path="/v1/embeddings")[0] == 200
    assert _post_unix(sock, info.token, {"model": "gpt-4o-mini"}, path="/v1/files")[0] == 404
    assert _post_unix(sock, info.token, None, path="/v1/models", method="GET")[0] == 200
    usage = ray.get(gw.close.remote(info.session_id))
    assert usage.calls == 3 and usage.cost_usd is None and usage.unpriced_models == ["my-local-llama"]
    calls = [json.loads(line) for line in (tmp_path / "llm_calls.jsonl").read_text().splitlines()]
    assert [c.get("usage_estimated") for c in calls] == [False, True, False]  # refused paths are not calls
    assert calls[1]["response"]["content"] == "streamed words here" and calls[1]["cost_usd"] is None
