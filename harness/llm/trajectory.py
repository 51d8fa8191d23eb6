"""The rollout format: one `logs/trajectory.json` per attempt, what the agent did step by step.

    {
      "format": "harness-trajectory/1",
      "agent": "coding-agent", "attempt_id": "...", "competition_id": "...",
      "model": "gpt-4o-mini", "settings": {"max_steps": 30, ...},     # once, at the top
      "started_at": "2026-...Z", "ended_at": "2026-...Z",
      "steps": [                                                       # in order
        {"index": 0, "role": "system" | "user" | "assistant" | "tool",
         "content": "...", "tool_calls": [{"id", "name", "arguments"}], "tool_call_id": "...",
         "tokens": {"input": 812, "output": 64}, "started_at": "...", "ended_at": "...",
         "metrics": {...}}                                             # optional, e.g. AIDE's validation metric
      ],
      "outcome": {"submission": true, "valid": true, "reason": "...", "steps": 7}
    }

Written by `coding-agent` and converted from AIDE's journal; `load_trajectory` validates one
(never following a link or reading more than `MAX_TRAJECTORY_BYTES`: the agent wrote it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "harness-trajectory/1"
MAX_TRAJECTORY_BYTES = 64 * 1024**2


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = ""
    name: str
    arguments: str = Field(default="", description="the call's arguments as the model wrote them (JSON text)")


class StepTokens(BaseModel):
    input: int = Field(default=0, ge=0)
    output: int = Field(default=0, ge=0)


class Step(BaseModel):
    """One message of the conversation, or one tool result."""

    model_config = ConfigDict(extra="allow")

    index: int = Field(ge=0)
    role: Literal["system", "user", "assistant", "tool"]
    content: Optional[str] = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: Optional[str] = None
    tokens: Optional[StepTokens] = None
    started_at: Optional[dt.datetime] = None
    ended_at: Optional[dt.datetime] = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class Outcome(BaseModel):
    model_config = ConfigDict(extra="allow")

    submission: bool = False
    valid: Optional[bool] = None
    reason: str = ""
    steps: int = 0


class Trajectory(BaseModel):
    """A whole rollout; `steps` are in order (indexes 0, 1, 2, ...)."""

    model_config = ConfigDict(extra="allow")

    format: Literal["harness-trajectory/1"] = "harness-trajectory/1"
    agent: str
    attempt_id: Optional[str] = None
    competition_id: Optional[str] = None
    model: Optional[str] = None
    settings: dict[str, Any] = Field(default_factory=dict)
    started_at: Optional[dt.datetime] = None
    ended_at: Optional[dt.datetime] = None
    steps: list[Step] = Field(default_factory=list)
    outcome: Outcome = Outcome()

    def model_post_init(self, _context: Any) -> None:
        for i, step in enumerate(self.steps):
            if step.index != i:
                raise ValueError(f"steps[{i}].index is {step.index}: steps must be numbered 0, 1, 2, ... in order")


class TrajectoryError(ValueError):
    """A trajectory file is missing, not a regular file, too big, or not in the format."""


def read_agent_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file an agent wrote: a regular file (not a link, FIFO or device) of at most
    `max_bytes`; raises TrajectoryError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise TrajectoryError(f"{path}: cannot open ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise TrajectoryError(f"{path}: not a regular file")
        if st.st_size > max_bytes:
            raise TrajectoryError(f"{path}: {st.st_size} bytes, more than the {max_bytes} allowed")
        return f.read(max_bytes + 1)[:max_bytes]


def load_trajectory(path: Path) -> Trajectory:
    """Read and validate one logs/trajectory.json."""
    raw = read_agent_file(path, MAX_TRAJECTORY_BYTES)
    try:
        return Trajectory.model_validate_json(raw)
    except ValueError as e:
        first = str(e).splitlines()
        raise TrajectoryError(f"{path}: not a {FORMAT} trajectory ({'; '.join(first[:3])})") from None


def write_trajectory(traj: Trajectory, path: Path) -> None:
    """Write atomically (a temporary name, then rename), so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(traj.model_dump_json(indent=1, exclude_none=True))
    os.replace(tmp, path)


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def as_json(traj: Trajectory) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(traj.model_dump_json(exclude_none=True))
    return out
