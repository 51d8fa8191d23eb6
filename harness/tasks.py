"""What an attempt is asked to do, behind one interface: a competition, or a
technique/engineering task. Each kind says how its data is prepared on a node,
what the agent is told, which of the agent's files the grader needs, and how
those files are graded.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import BaseModel

from harness.data import ensure_prepared
from harness.grading import grade_submission
from harness.registry import Registry, load_registry
from harness.spec import AttemptSpec, GradeReport, Settings

COMPETITION_INSTRUCTIONS = """\
# Task

You are solving the machine-learning competition `{competition_id}`. Its description
is below and at `/home/data/description.md`; the data is in `/home/data` (read-only).

- Train a model on the training data and predict the test set.
- Write your predictions to `/home/submission/submission.csv`, in exactly the
  format of `/home/data/sample_submission.csv` (same columns, one row per test id).
- Check the format at any time with `/home/validate_submission.sh` (or
  `python3 -m harness.validate`). It checks format only and never reveals a score.
- Save the code you wrote to `/home/code/` and anything worth keeping to `/home/logs/`.
- There is no internet access. You have {time_limit_s:g} seconds, {cpus:g} CPU(s) and {memory_gb:g} GB of memory.

The same paths are in the environment: DATA_DIR, SUBMISSION_DIR, CODE_DIR, LOGS_DIR.

---

{description}
"""

VALIDATE_SCRIPT = '#!/bin/sh\nexec python3 -m harness.validate "$@"\n'


class PreparedTask(BaseModel):
    """A task's inputs on this node: what the agent sees and what the grader keeps."""

    public: Path
    private: Path
    instructions: str


class TaskKindBackend(ABC):
    kind: str

    @abstractmethod
    def prepare(self, attempt: AttemptSpec, settings: Settings) -> PreparedTask:
        """Make sure the task's data is in this node's cache; return where it is."""

    @abstractmethod
    def outputs(self, attempt_dir: Path) -> dict[str, bytes]:
        """The agent's files the grader needs (name -> bytes), read after the agent ended."""

    @abstractmethod
    def grade(self, attempt: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        """Grade the outputs. Never raises for anything the agent wrote."""


class CompetitionTask(TaskKindBackend):
    kind = "competition"

    def prepare(self, attempt: AttemptSpec, settings: Settings) -> PreparedTask:
        comp = registry_for(settings).competition(attempt.competition_id)
        data = ensure_prepared(comp, settings, attempt.lite)
        desc = data.public / "description.md"
        return PreparedTask(
            public=data.public,
            private=data.private,
            instructions=COMPETITION_INSTRUCTIONS.format(
                competition_id=comp.id, time_limit_s=attempt.time_limit_s, cpus=attempt.resources.cpus,
                memory_gb=attempt.resources.memory_gb, description=desc.read_text() if desc.is_file() else comp.name,
            ),
        )

    def outputs(self, attempt_dir: Path) -> dict[str, bytes]:
        sub = attempt_dir / "submission" / "submission.csv"
        parquet = sub.with_suffix(".parquet")  # Kaggle's format for some competitions; the CSV wins when both exist
        return {"submission.csv": sub.read_bytes()} if sub.is_file() else \
            {"submission.parquet": parquet.read_bytes()} if parquet.is_file() else {}

    def grade(self, attempt: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        comp = registry_for(settings).competition(attempt.competition_id)
        data = ensure_prepared(comp, settings, attempt.lite)
        return grade_submission(comp, outputs.get("submission.csv", outputs.get("submission.parquet")), data.answers, data.sample_submission,
                                lite=attempt.lite)


@functools.lru_cache(maxsize=8)
def registry_for(settings: Settings) -> Registry:
    """One registry scan per worker process and settings."""
    return load_registry(settings)


def backend_for(attempt: AttemptSpec) -> TaskKindBackend:
    if attempt.task_kind == "competition":
        return CompetitionTask()
    from harness.technique import TechniqueTask  # technique and engineering tasks

    return TechniqueTask()
