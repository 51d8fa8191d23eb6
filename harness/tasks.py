"""What an attempt is asked to do, behind one interface: a competition, or a
technique/engineering task. Each kind says how its data is prepared on a node,
what the agent is told, which of the agent's files the grader needs, and how
those files are graded.
"""

from __future__ import annotations

from pathlib import Path

from harness.grading import MAX_SUBMISSION_BYTES
from harness.safe_files import UnsafeFile, read_beneath
from harness.data import ensure_prepared
from harness.grading import grade_submission
from harness.registry import registry_for
from harness.spec import AttemptSpec, GradeReport, Settings
from harness.task_kind import PreparedTask, TaskKindBackend
from harness.technique import TechniqueTask

__all__ = ["COMPETITION_INSTRUCTIONS", "VALIDATE_SCRIPT", "CompetitionTask", "PreparedTask", "TaskKindBackend",
           "backend_for", "registry_for"]

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

REFUSED = "submission.csv.refused"  # outputs key: why the agent's submission.csv was not read

VALIDATE_SCRIPT = '#!/bin/sh\nexec python3 -m harness.validate "$@"\n'


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
        """submission.csv (else submission.parquet, Kaggle's format for some competitions), read
        without following links (see harness.safe_files); a refused file travels as its reason
        under `submission.csv.refused`."""
        for name in ("submission.csv", "submission.parquet"):
            try:
                return {name: read_beneath(attempt_dir / "submission", name, MAX_SUBMISSION_BYTES)}
            except FileNotFoundError:
                continue
            except (UnsafeFile, OSError) as e:
                return {REFUSED: f"{name} refused: {e}"[:300].encode()}
        return {}

    def grade(self, attempt: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        comp = registry_for(settings).competition(attempt.competition_id)
        data = ensure_prepared(comp, settings, attempt.lite)
        report = grade_submission(comp, outputs.get("submission.csv", outputs.get("submission.parquet")), data.answers, data.sample_submission,
                                  lite=attempt.lite)
        if REFUSED in outputs:
            report = report.model_copy(update={"submission_exists": True, "invalid_reason": outputs[REFUSED].decode(errors="replace")})
        return report


def backend_for(attempt: AttemptSpec) -> TaskKindBackend:
    """The backend of the attempt's `task_kind`."""
    return CompetitionTask() if attempt.task_kind == "competition" else TechniqueTask()
