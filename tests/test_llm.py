"""LLM agents end to end: the gateway (a real Ray actor, real Unix sockets, real aiohttp), the
forwarder inside real bubblewrap and docker sandboxes, coding-agent on a built-in competition,
accounting, limits, retries, provider outages, a hostile agent, AIDE's journal, hints, rollouts.
The LLM provider is the scripted fake in tests/llm_fake.py (the one fake allowed)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.llm.trajectory import load_trajectory
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


def pd_isna(x: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(x))
