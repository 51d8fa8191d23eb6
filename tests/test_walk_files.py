"""`walk_regular_files`, the one listing walk of a run directory (the service's artifact list
and zip, the UI's file list): regular files only, sorted, never through a symlink, never a
FIFO or the store's temporary files."""

from __future__ import annotations

import os
from pathlib import Path

from harness.safe_files import walk_regular_files
from harness.ui.files import list_files


def test_only_regular_files_beneath_and_never_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "answers.csv").write_text("secret")
    run = tmp_path / "run"
    (run / "artifacts" / "a" / "logs").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    (run / "artifacts" / "a" / "logs" / "agent.log").write_text("hello")
    (run / "artifacts" / "a" / "b.txt").write_text("b")
    (run / "artifacts" / "a" / "answers.csv").symlink_to(outside / "answers.csv")
    (run / "artifacts" / "a" / "host").symlink_to(outside, target_is_directory=True)
    os.mkfifo(run / "artifacts" / "a" / "pipe")
    (run / ".attempts.parquet.tmp").write_text("half-written")

    listed = list(walk_regular_files(run))
    assert [(rel, size) for rel, _, size in listed] == [
        ("summary.json", 2), ("artifacts/a/b.txt", 1), ("artifacts/a/logs/agent.log", 5)]
    assert all(full == run / rel for rel, full, _ in listed)
    # the UI lists the same files below a folder, with paths relative to the run directory
    assert [(e.path, e.size) for e in list_files(run, "artifacts/a")] == [("artifacts/a/b.txt", 1), ("artifacts/a/logs/agent.log", 5)]
    assert list_files(run, "artifacts/a/host") == [] and list_files(run, "../outside") == []
