"""Technique and engineering tasks (imbalance, missing, encoding, cv, scaling, leakage; ml-spec, ...).

Placeholder until the technique-task issue lands: selecting any task is refused
with a clear message, so competition runs are unaffected.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness.registry import RegistryError
from harness.spec import AttemptSpec, RunSpec


def expand_task_selection(technique_tasks: Sequence[str] | bool | str, engineering_tasks: Sequence[str] | str) -> tuple[list[str], list[str]]:
    if technique_tasks or engineering_tasks:
        raise RegistryError("technique and engineering tasks are not available in this version of harness yet")
    return [], []


def validate_task_names(technique_tasks: Sequence[str], engineering_tasks: Sequence[str]) -> None:
    expand_task_selection(technique_tasks, engineering_tasks)


def plan_technique_attempts(spec: RunSpec, common: dict[str, Any]) -> list[AttemptSpec]:
    return []
