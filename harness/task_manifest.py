"""The public manifest of a technique or engineering task (`task.json` in its public data):
the one model both the host (`harness.techniques`, which re-exports it) and the format
validator inside the sandbox (`harness.validate`) read it with. A leaf (pydantic only), so
the validator stays light where the task API's dependencies are not installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Type

from pydantic import BaseModel

#: the manifest's file name in a task's public data folder
MANIFEST = "task.json"


class Manifest(BaseModel):
    """public/task.json: what the agent needs to know to start."""

    task: str
    kind: str
    source: str
    outputs: list[str]
    schema_file: Optional[str] = None
    target: Optional[str] = None
    id_column: Optional[str] = None
    files: dict[str, str] = {}
    level: str = "easy"  # technique tasks: easy | medium | hard
    notes: str = ""  # level-specific instructions (`$level_notes` in instructions.md)


def write_manifest(public: Path, manifest: Manifest, model: Optional[Type[BaseModel]] = None) -> None:
    """Write `manifest` to `public`/task.json, and `model`'s JSON Schema to its `schema_file` when both are given."""
    if model is not None and manifest.schema_file:
        (public / manifest.schema_file).write_text(json.dumps(model.model_json_schema(), indent=1))
    (public / MANIFEST).write_text(manifest.model_dump_json(indent=1))


def read_manifest(public: Path) -> Manifest:
    """The manifest in the folder `public`; OSError when unreadable, pydantic's ValidationError when malformed."""
    return Manifest.model_validate_json((public / MANIFEST).read_text())
