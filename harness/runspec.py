"""One seam from user input to a `RunSpec`.

The four doors of a run — `harness run` flags, `harness run --config run.yaml`,
`harness.run(**kwargs)` and the HTTP body (and so the SDK) — all hand a `RunInput`
(or a mapping of its fields, or a finished `RunSpec`) to `to_run_spec`, which checks
every name against the registry and returns the frozen `RunSpec` that is stored as
run.json and given to the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import RunError
from harness.registry import Registry, read_competition_set
from harness.spec import RunSpec, SandboxKind
from harness.technique import expand_task_selection


class RunInput(BaseModel):
    """What a user may say about a run, in any door. Names are checked by `to_run_spec`.

    `competitions`: ids, or one id / split name / split file; `split` adds a split;
    `technique_tasks`: names, a comma string, "all" or True; `engineering_tasks` likewise."""

    model_config = ConfigDict(extra="forbid")

    competitions: Optional[Union[list[str], str]] = None
    split: Optional[str] = None
    agent: str = "dummy"
    seeds: int = Field(1, ge=1, le=1000)
    lite: bool = False
    sandbox: SandboxKind = "local"
    max_concurrency: Optional[int] = Field(None, ge=1)
    max_retries: int = Field(2, ge=0, le=20)
    time_limit_s: Optional[float] = Field(None, gt=0)
    technique_tasks: Union[bool, list[str], str] = False
    engineering_tasks: Union[list[str], str] = Field(default_factory=list)
    owner: Optional[str] = None
    ray_resources: dict[str, float] = Field(default_factory=dict)
    # LLM agents: the model and the per-attempt limits; hints from an earlier run
    model: Optional[str] = None
    token_limit: Optional[int] = Field(None, ge=0)
    cost_limit: Optional[float] = Field(None, ge=0)
    hints_from: Optional[str] = None
    hints: Literal["outputs", "rollouts"] = "outputs"
    allow_network: bool = False  # the operator's grant for agents whose config asks for network
    technique_level: Literal["easy", "medium", "hard", "all"] = "easy"


RunRequestLike = Union[RunInput, RunSpec, Mapping[str, Any]]


def to_run_spec(registry: Registry, given: RunRequestLike) -> RunSpec:
    """User input -> a RunSpec whose every competition, agent and task exists.

    A RunSpec is checked and returned as it is; a mapping is read as RunInput fields.
    Raises RegistryError (an unknown name) or RunError (nothing to run, a malformed field)."""
    if isinstance(given, RunSpec):
        _check_names(registry, given.competitions, given.agent, given.technique_tasks, given.engineering_tasks)
        return given
    try:
        inp = given if isinstance(given, RunInput) else RunInput.model_validate(dict(given))
    except ValidationError as e:
        raise RunError(_field_problem("run input", e)) from None
    ids: list[str] = []
    if isinstance(inp.competitions, str):
        # one id, or a competition set: a split name ("lite") or a split file ("experiments/splits/low.txt")
        ids += [inp.competitions] if inp.competitions in registry.competitions else read_competition_set(inp.competitions)
    elif inp.competitions:
        ids += list(inp.competitions)
    if inp.split:
        ids += read_competition_set(inp.split)
    ids = list(dict.fromkeys(ids))
    technique, engineering = expand_task_selection(inp.technique_tasks, inp.engineering_tasks)
    _check_names(registry, ids, inp.agent, technique, engineering)
    try:
        return RunSpec(competitions=ids, agent=inp.agent, seeds=inp.seeds, lite=inp.lite, sandbox=inp.sandbox,
                       max_concurrency=inp.max_concurrency, max_retries=inp.max_retries, time_limit_s=inp.time_limit_s,
                       technique_tasks=technique, engineering_tasks=engineering, owner=inp.owner,
                       include_competitions=not (technique or engineering), ray_resources=inp.ray_resources,
                       model=inp.model, token_limit=inp.token_limit, cost_limit=inp.cost_limit, hints_from=inp.hints_from,
                       hints=inp.hints, allow_network=inp.allow_network,
                       technique_level=inp.technique_level)
    except ValidationError as e:
        raise RunError(_field_problem("run input", e)) from None


def _check_names(registry: Registry, competitions: Sequence[str], agent: str, technique: Sequence[str],
                 engineering: Sequence[str]) -> None:
    registry.agent(agent)
    if not competitions and not technique and not engineering:
        raise RunError("nothing to run: give competitions (-c ID), a split (--split lite), or technique tasks")
    for cid in competitions:
        registry.competition(cid)
    if technique or engineering:
        expand_task_selection(list(technique), list(engineering))


def load_run_file(path: Path | str) -> RunInput:
    """A run file (YAML or JSON) holding RunInput fields, e.g.

        split: lite
        agent: baseline
        seeds: 3

    Raises RunError naming the file and the field at fault."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise RunError(f"{path}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise RunError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise RunError(f"{path}: expected a mapping of run fields (agent, competitions, split, seeds, ...), "
                       f"got {type(raw).__name__}")
    try:
        return RunInput.model_validate(raw)
    except ValidationError as e:
        raise RunError(_field_problem(str(path), e)) from None


def _field_problem(where: str, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(x) for x in first["loc"]) or "(top level)"
    fix = "; known fields: " + ", ".join(RunInput.model_fields) if first["type"] == "extra_forbidden" else ""
    return f"{where}: field {field!r}: {first['msg']}{fix}"


__all__ = ["RunInput", "RunRequestLike", "load_run_file", "to_run_spec"]
