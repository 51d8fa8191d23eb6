"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

ShownStatus = Literal["queued", "running", "completed", "failed", "cancelled", "interrupted"]


class RunRequest(BaseModel):
    """POST /runs. Give `competitions` (ids, or one split name / split file) and/or
    `competition_set` (a split name such as `lite`, or `experiments/splits/<name>.txt`)."""

    model_config = ConfigDict(extra="forbid")

    competitions: Optional[Union[list[str], str]] = None
    competition_set: Optional[str] = None
    agent_id: str = "dummy"
    lite: bool = False
    seeds: int = Field(1, ge=1, le=1000)
    max_concurrency: Optional[int] = Field(None, ge=1, le=10_000)
    max_retries: int = Field(2, ge=0, le=20)
    time_limit_s: Optional[float] = Field(None, gt=0)
    sandbox: Literal["local", "docker", "auto"] = "local"
    # the seed's form: technique_tasks=True, tasks=["imbalance", "missing"]; or a list of names
    technique_tasks: Union[bool, list[str]] = False
    engineering_tasks: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)
    # difficulty of the technique tasks: easy (the original tasks), medium, hard, or all three
    technique_level: Literal["easy", "medium", "hard", "all"] = "easy"
    # LLM agents: model, per-attempt limits, hints from an earlier run (`--hints-from`)
    model: Optional[str] = None
    token_limit: Optional[int] = Field(None, ge=0)
    cost_limit: Optional[float] = Field(None, ge=0)
    hints_from: Optional[str] = None
    hints: Literal["outputs", "rollouts"] = "outputs"


class RunAccepted(BaseModel):
    """202 answer of POST /runs, /runs/{id}/cancel and /runs/{id}/resume."""

    run_id: str
    status: str


class RunView(BaseModel):
    """GET /runs/{id}: where a run stands."""

    run_id: str
    owner: Optional[str]
    agent_id: str
    status: ShownStatus
    live: bool = Field(description="a driver is executing it right now")
    resumable: bool = Field(description="POST /runs/{id}/resume would run its missing attempts")
    done: int = Field(description="attempts with a row in the store")
    total: int
    failed: int
    created_at: dt.datetime
    updated_at: dt.datetime
    elapsed_s: float = Field(description="seconds from creation to the last update (to now while live)")
    error: Optional[str] = None
    spec: dict[str, Any]


class RunPage(BaseModel):
    """GET /runs: newest first."""

    runs: list[RunView]
    total: int
    offset: int
    limit: int
    next_offset: Optional[int]


class ArtifactEntry(BaseModel):
    path: str = Field(description="relative to the run directory; GET /runs/{id}/artifacts/{path} fetches it")
    size: int = Field(description="bytes")


class ArtifactList(BaseModel):
    run_id: str
    files: list[ArtifactEntry]


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="short machine-readable kind, e.g. not_found, invalid_request")
    message: str = Field(description="one sentence a person can act on")
    field: Optional[str] = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    auth: bool = Field(description="bearer tokens are required")
    max_runs_per_user: int
