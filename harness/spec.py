"""Pydantic models shared by every module: what a run is, what an attempt is,
what a sandbox returns, what a grade says, and the row that lands in Parquet."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

SandboxKind = Literal["local", "docker", "auto"]
Isolation = Literal["bwrap", "docker", "none"]
TaskKind = Literal["competition", "technique"]
AttemptStatus = Literal["succeeded", "agent_failed", "timeout", "oom", "infra_error", "cancelled"]
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]

#: statuses that count as a finished attempt; a resume re-runs anything else
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "agent_failed", "timeout", "oom", "infra_error"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(Frozen):
    """What one attempt may use: CPU cores, memory in GB, GPUs."""

    cpus: float = Field(1.0, gt=0)
    memory_gb: float = Field(4.0, gt=0)
    gpus: int = Field(0, ge=0)
    pids: int = Field(4096, gt=0)
    shm_gb: float = Field(1.0, gt=0)


class AgentConfig(BaseModel):
    """An agent folder's config.yaml: mlebench keys kept, plus what harness needs."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    dir: Path
    command: Optional[str | list[str]] = None
    resources: Resources = Resources()
    time_limit_s: float = Field(3600.0, gt=0)
    network: bool = False
    description: str = ""
    # mlebench keys
    start: Optional[str] = None
    dockerfile: Optional[str] = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    kwargs_type: Optional[str] = None
    env_vars: dict[str, str] = Field(default_factory=dict)
    privileged: bool = False


class CompetitionConfig(BaseModel):
    """A competition folder's config.yaml (mlebench format) plus where it was found."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    name: str
    competition_type: str = "simple"
    awards_medals: bool = True
    description: str = "description.md"
    dataset: dict[str, str] = Field(default_factory=dict)
    grader: dict[str, str]
    preparer: str
    dir: Path
    source: Literal["builtin", "path", "mlebench"] = "builtin"
    # harness extensions, all optional
    kind: str = "tabular"
    metric: str = ""
    lower_is_better: Optional[bool] = None


class Settings(Frozen):
    """Where things live on a node. Passed into every Ray task so that a worker on
    another node resolves the same names without relying on the driver's environment."""

    data_dir: Path
    competitions_path: tuple[Path, ...] = ()
    agents_path: tuple[Path, ...] = ()
    work_dir: Path

    @classmethod
    def from_env(cls) -> "Settings":
        import os

        def paths(var: str) -> tuple[Path, ...]:
            return tuple(Path(p).expanduser() for p in os.environ.get(var, "").split(os.pathsep) if p)

        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness"
        return cls(
            data_dir=Path(os.environ.get("HARNESS_DATA_DIR", cache / "data")).expanduser(),
            competitions_path=paths("HARNESS_COMPETITIONS_PATH"),
            agents_path=paths("HARNESS_AGENTS_PATH"),
            work_dir=Path(os.environ.get("HARNESS_WORK_DIR", cache / "work")).expanduser(),
        )


class RunSpec(Frozen):
    """Everything that defines a run. Stored as run.json; resume re-reads it."""

    competitions: list[str] = Field(default_factory=list)
    agent: str
    seeds: int = Field(1, ge=1, le=1000)
    lite: bool = False
    sandbox: SandboxKind = "local"
    max_concurrency: Optional[int] = Field(None, ge=1)
    max_retries: int = Field(2, ge=0, le=20)
    time_limit_s: Optional[float] = Field(None, gt=0)
    technique_tasks: list[str] = Field(default_factory=list)
    engineering_tasks: list[str] = Field(default_factory=list)
    include_competitions: bool = True
    owner: Optional[str] = None

    @field_validator("agent")
    @classmethod
    def _agent_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"agent id {v!r} may only hold letters, digits and . _ - /")
        return v


def new_run_id(agent: str, now: Optional[dt.datetime] = None) -> str:
    now = now or utcnow()
    return f"{now:%Y-%m-%dT%H-%M-%S}-UTC_{agent.replace('/', '-')}_{secrets.token_hex(3)}"


class AttemptSpec(Frozen):
    """One (task, agent, seed). `attempt_id` is stable so resume is a set difference."""

    run_id: str
    attempt_id: str
    task_kind: TaskKind = "competition"
    competition_id: str
    technique: Optional[str] = None
    agent_id: str
    seed: int
    lite: bool = False
    sandbox: SandboxKind = "local"
    time_limit_s: float
    resources: Resources

    @property
    def task_id(self) -> str:
        return self.attempt_id.split("__", 1)[0]


def attempt_id_for(task_id: str, agent: str, seed: int) -> str:
    return f"{task_id}__{agent.replace('/', '-')}__s{seed}"


class SandboxResult(Frozen):
    """What a sandbox reports after one attempt ran (or failed to run)."""

    status: AttemptStatus
    exit_code: Optional[int] = None
    isolation: Isolation
    agent_seconds: float = 0.0
    peak_memory_mb: Optional[float] = None
    error: Optional[str] = None


class AttemptOutcome(Frozen):
    """What an attempt's Ray task returns to the driver."""

    attempt_id: str
    status: AttemptStatus
    exit_code: Optional[int] = None
    isolation: Isolation = "none"
    sandbox: str = "local"
    started_at: dt.datetime
    ended_at: dt.datetime
    agent_seconds: float = 0.0
    peak_memory_mb: Optional[float] = None
    node: str = ""
    error: Optional[str] = None
    # the attempt's artifacts as a tar.gz, only when it ran on a node other than the driver's
    artifacts_tar: Optional[bytes] = None
    # the files the grader needs (name -> bytes); the grader may run on yet another node
    outputs: dict[str, bytes] = Field(default_factory=dict)


class GradeReport(Frozen):
    """mlebench's per-competition report, plus why a submission was invalid."""

    competition_id: str
    score: Optional[float] = None
    gold_threshold: Optional[float] = None
    silver_threshold: Optional[float] = None
    bronze_threshold: Optional[float] = None
    median_threshold: Optional[float] = None
    any_medal: bool = False
    gold_medal: bool = False
    silver_medal: bool = False
    bronze_medal: bool = False
    above_median: bool = False
    submission_exists: bool = False
    valid_submission: bool = False
    is_lower_better: Optional[bool] = None
    invalid_reason: Optional[str] = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    submission_path: str = ""
    grade_seconds: float = 0.0
    # technique/engineering tasks: one entry per check
    checks: list["CheckResult"] = Field(default_factory=list)
    # sub-scores of a competition whose grade module has `grade_details` (group -> score), e.g. "lead:V1"
    details: dict[str, float] = Field(default_factory=dict)


class CheckResult(Frozen):
    """One scored check of a technique or engineering task."""

    check: str
    points: float
    max_points: float
    passed: bool
    detail: str = ""


class AttemptResult(Frozen):
    """One row of the attempts table (types fixed by `store.ATTEMPTS_SCHEMA`)."""

    run_id: str
    attempt_id: str
    task_kind: TaskKind
    competition_id: str
    technique: Optional[str] = None
    agent_id: str
    seed: int
    sandbox: str
    isolation: Isolation
    status: AttemptStatus
    exit_code: Optional[int] = None
    tries: int = 1
    started_at: Optional[dt.datetime] = None
    ended_at: Optional[dt.datetime] = None
    agent_seconds: Optional[float] = None
    grade_seconds: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    node: str = ""
    score: Optional[float] = None
    submission_exists: bool = False
    valid_submission: bool = False
    invalid_reason: Optional[str] = None
    gold_threshold: Optional[float] = None
    silver_threshold: Optional[float] = None
    bronze_threshold: Optional[float] = None
    median_threshold: Optional[float] = None
    any_medal: bool = False
    gold_medal: bool = False
    silver_medal: bool = False
    bronze_medal: bool = False
    above_median: bool = False
    is_lower_better: Optional[bool] = None
    error: Optional[str] = None
    artifacts_dir: str = ""


class RunState(BaseModel):
    """run.json: the spec plus the run's life so far."""

    run_id: str
    spec: RunSpec
    owner: Optional[str] = None
    status: RunStatus = "queued"
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    total: int = 0
    done: int = 0
    failed: int = 0
    error: Optional[str] = None
    driver: Optional[str] = None  # host:pid of the process driving it, to tell a crashed run from a live one


class RunSummary(BaseModel):
    """summary.json: the aggregates the CLI and the API show."""

    run_id: str
    agent_id: str
    status: RunStatus
    total: int
    done: int
    by_status: dict[str, int]
    valid_submission_rate: Optional[float] = None
    valid_submission_sem: Optional[float] = None
    any_medal_rate: Optional[float] = None
    any_medal_sem: Optional[float] = None
    above_median_rate: Optional[float] = None
    technique_score: Optional[float] = None
    competitions: list[dict[str, Any]] = Field(default_factory=list)
    techniques: list[dict[str, Any]] = Field(default_factory=list)


GradeReport.model_rebuild()
