"""The index of runs (harness/run_index.py): listing a store of 1,000 runs reads no run.json once
the index is current, and the index is never the only truth: a missing, corrupt, foreign or
stale index, a run.json changed behind its back, a new or deleted run are all repaired from
the run.json files. Counted in run.json reads, never timed."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from harness import run_index
from harness.spec import RunSpec, RunState
from harness.store import RunStore, list_runs

N = 1000


def _fake_store(root: Path, n: int) -> list[str]:
    """`n` tiny run dirs (run.json only), created a second apart; returns their ids, oldest first."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    ids = []
    for i in range(n):
        state = RunState(run_id=f"dummy-{i:05d}", spec=RunSpec(agent="dummy", competitions=["diabetes-progression"]),
                         status="completed", total=1, done=1, created_at=t0 + dt.timedelta(seconds=i))
        (root / state.run_id).mkdir(parents=True)
        (root / state.run_id / "run.json").write_text(state.model_dump_json())
        ids.append(state.run_id)
    return ids


def _listed(root: Path) -> tuple[list[str], int]:
    """Run ids as listed (newest first) and how many run.json files that listing read."""
    before = run_index.reads
    ids = [s.run_id for s in list_runs(root)]
    return ids, run_index.reads - before


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "runs"
    return root, _fake_store(root, N)


def test_a_current_index_reads_no_run_json(runs: tuple[Path, list[str]]) -> None:
    root, ids = runs
    listed, read = _listed(root)
    assert listed == ids[::-1] and read == N  # no index yet: every run.json once, and the index is written
    assert (root / run_index.INDEX_NAME).is_file()
    listed, read = _listed(root)
    assert listed == ids[::-1] and read == 0
    run_index._memo.clear()  # a fresh process (the CLI): the index file is parsed, still no run.json read
    listed, read = _listed(root)
    assert listed == ids[::-1] and read == 0
    # what the index returns equals what the files say, field for field
    assert [s.model_dump() for s in list_runs(root)] == \
        [RunState.model_validate_json((root / i / "run.json").read_text()).model_dump() for i in ids[::-1]]


def test_write_state_keeps_the_index_current(runs: tuple[Path, list[str]]) -> None:
    root, ids = runs
    _listed(root)
    rs = RunStore(root, ids[5])
    state = rs.read_state()
    state.status, state.error = "failed", "boom"
    rs.write_state(state)
    listed, read = _listed(root)
    assert read == 0 and listed == ids[::-1]
    assert next(s for s in list_runs(root) if s.run_id == ids[5]).error == "boom"
    # a run created through the store: also known without a read
    new = RunStore(root, "dummy-new")
    new.write_state(RunState(run_id="dummy-new", spec=RunSpec(agent="dummy", competitions=["diabetes-progression"]),
                             created_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)))
    listed, read = _listed(root)
    assert read == 0 and listed[0] == "dummy-new" and len(listed) == N + 1


def test_a_note_never_keys_an_older_state_to_a_newer_file(runs: tuple[Path, list[str]]) -> None:
    """Two writers of one run.json: A writes, B writes, then A's note comes last. The index must
    not pair A's state with B's file (the listing would say A's status until the next change)."""
    root, ids = runs
    _listed(root)
    rs = RunStore(root, ids[7])
    a = rs.read_state()
    a.status = "running"
    rs.write_state(a)  # A's write (and its note)
    b = a.model_copy(update={"status": "cancelled", "error": "B"})
    (root / ids[7] / "run.json").write_text(b.model_dump_json(indent=1))  # B's write, its note not yet made
    run_index.note(root, a, root / ids[7] / "run.json")  # A's note, late
    assert next(s for s in list_runs(root) if s.run_id == ids[7]).status == "cancelled"


def test_changes_behind_the_index_are_seen(runs: tuple[Path, list[str]]) -> None:
    root, ids = runs
    _listed(root)
    # run.json replaced by something that is not the harness (a copy, a hand edit, an older harness)
    path = root / ids[7] / "run.json"
    doc = json.loads(path.read_text())
    doc["status"] = "cancelled"
    tmp = path.with_name("x.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    # one run deleted, one created by hand, one turned into garbage
    shutil.rmtree(root / ids[0])
    shutil.copytree(root / ids[1], root / "copied")
    (root / "copied" / "run.json").write_text((root / ids[1] / "run.json").read_text().replace(ids[1], "copied"))
    (root / ids[2] / "run.json").write_text("{not json")
    listed, read = _listed(root)
    assert read == 3, read  # the edited, the copied and the garbage one; nothing else
    assert ids[0] not in listed and ids[2] not in listed and "copied" in listed and len(listed) == N - 1
    assert next(s for s in list_runs(root) if s.run_id == ids[7]).status == "cancelled"
    index = root / run_index.INDEX_NAME
    written = index.stat().st_ino
    listed2, read = _listed(root)
    assert listed2 == listed and read == 1  # only the garbage run.json is read again (it is never cached)
    assert index.stat().st_ino == written  # and the index is not rewritten for it


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "foreign schema", "old version", "symlink", "fifo",
                                    "a directory"])
def test_a_bad_index_is_rebuilt_from_the_run_json_files(runs: tuple[Path, list[str]], tmp_path: Path, damage: str) -> None:
    root, ids = runs
    _listed(root)
    index = root / run_index.INDEX_NAME
    good = index.read_text()
    index.unlink()
    if damage == "garbage":
        index.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        index.write_text(good[: len(good) // 2])
    elif damage in ("foreign schema", "old version"):
        doc = json.loads(good)
        doc["schema_" if damage == "foreign schema" else "version"] = "0000" if damage == "foreign schema" else 0
        doc["runs"][ids[3]]["state"]["status"] = "queued"  # what a stale index would wrongly claim
        index.write_text(json.dumps(doc))
    elif damage == "symlink":
        outside = tmp_path / "outside.json"
        outside.write_text(good.replace('"completed"', '"queued"'))
        index.symlink_to(outside)
    elif damage == "fifo":
        os.mkfifo(index)
    elif damage == "a directory":
        index.mkdir()
    run_index._memo.clear()
    listed, read = _listed(root)
    assert listed == ids[::-1] and read == N, (damage, read)
    assert {s.status for s in list_runs(root)} == {"completed"}
    if damage != "a directory":  # rebuilt in place (a directory in its way is left alone, and every listing reads the files)
        assert index.is_file() and not index.is_symlink()
        assert _listed(root)[1] == 0
    if damage == "symlink":
        assert "queued" in (tmp_path / "outside.json").read_text()  # the link was replaced, its target not written


def test_a_store_that_cannot_hold_the_index_is_listed_all_the_same(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    ids = _fake_store(root, 5)
    (root / run_index.LOCK_NAME).mkdir()  # the lock cannot be taken: nothing is written, nothing fails
    listed, read = _listed(root)
    assert listed == ids[::-1] and read == 5
    assert not (root / run_index.INDEX_NAME).exists()
