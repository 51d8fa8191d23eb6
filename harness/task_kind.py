"""The interface every kind of task implements (competition, technique/engineering):
how its data is prepared on a node, what the agent is told, which of the agent's files
the grader needs, and how they are graded. A leaf below `tasks` and `technique`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import BaseModel

from harness.spec import AttemptSpec, GradeReport, Settings


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
