"""Technique and engineering tasks (imbalance, missing, encoding, cv, scaling, leakage; ml-spec, ...).

Interface used by the rest of harness (the technique-task issue fills it in):
- `available_tasks()`: every task, as TaskInfo (name, kind, description)
- `expand_task_selection(technique_tasks, engineering_tasks)`: user input (names, "all", True) -> two name lists
- `validate_task_names(...)`: raise RegistryError naming an unknown task
- `plan_technique_attempts(spec, common)`: the AttemptSpecs of a run's technique/engineering tasks
- `TechniqueTask`: the TaskKindBackend (prepare, outputs, grade) for task_kind="technique"
- `list_tasks()`: lines for `harness list tasks`

Until then selecting any task is refused with a clear message, so competition runs are unaffected.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import BaseModel

from harness.registry import RegistryError
from harness.spec import AttemptSpec, RunSpec


class TaskInfo(BaseModel):
    name: str
    kind: Literal["technique", "engineering"]
    description: str


def available_tasks() -> list[TaskInfo]:
    return []


def list_tasks() -> list[str]:
    return [f"{t.name} ({t.kind}): {t.description}" for t in available_tasks()] or ["no technique tasks available"]


def expand_task_selection(technique_tasks: Sequence[str] | bool | str, engineering_tasks: Sequence[str] | str) -> tuple[list[str], list[str]]:
    if technique_tasks or engineering_tasks:
        raise RegistryError("technique and engineering tasks are not available in this version of harness yet")
    return [], []


def validate_task_names(technique_tasks: Sequence[str], engineering_tasks: Sequence[str]) -> None:
    expand_task_selection(technique_tasks, engineering_tasks)


def plan_technique_attempts(spec: RunSpec, common: dict[str, Any]) -> list[AttemptSpec]:
    return []
