"""An index of a run store's run.json files, so listing 1,000 runs does not read 1,000 files.

    <store>/.runs-index.json   {"version", "schema", "runs": {run_id: {mtime_ns, size, ino, state}}}

The index is a cache, never the truth: every listing stats each `<run>/run.json` (one
`stat` per run, no read) and uses the indexed state only when the file's mtime, size and
inode are the ones recorded. A run.json written by anything else (an older harness, a hand
edit, a copy), a new run, a deleted run, a missing, corrupt or foreign index, or an index
written by a harness whose RunState has other fields, are all noticed and repaired from the
run.json files, and the repaired index is written back when no other process holds its lock.
`RunStore.write_state` refreshes its run's entry (`note`), so the next listing reads nothing.

A long-lived process (the service) also keeps the parsed index in memory while the index
file is unchanged, so `GET /runs` costs one scandir and one stat per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

from pydantic import BaseModel, ValidationError

from harness.spec import RunState

INDEX_NAME = ".runs-index.json"
LOCK_NAME = ".runs-index.lock"
VERSION = 1
MAX_INDEX_BYTES = 512 * 1024**2  # an index larger than this is not read (rebuilt from the run.json files)

#: run.json files parsed by this process (tests assert the index spares them)
reads = 0


class _Entry(BaseModel):
    mtime_ns: int
    size: int
    ino: int
    state: RunState


class _Index(BaseModel):
    version: int
    schema_: str = ""
    runs: dict[str, _Entry] = {}


_Key = tuple[int, int, int]  # (mtime_ns, size, ino) of a file
_memo: dict[str, tuple[_Key, _Index]] = {}  # index path -> (its file's key, parsed), for long-lived processes
_memo_lock = threading.Lock()


@functools.cache
def schema_fingerprint() -> str:
    """A hash of RunState's JSON schema: an index written by a harness with other fields is not trusted."""
    return hashlib.sha256(json.dumps(RunState.model_json_schema(), sort_keys=True).encode()).hexdigest()[:16]


def _key(st: os.stat_result) -> _Key:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read_state(path: str) -> Optional[RunState]:
    """One run.json, or None when it is unreadable or not a RunState (the run is left out, as before)."""
    global reads
    reads += 1
    try:
        with open(path, "rb") as f:
            return RunState.model_validate_json(f.read())
    except (OSError, ValueError):
        return None


def _load(root: Path) -> _Index:
    """The index as stored, or an empty one when it is missing, not a regular file, too big, corrupt or foreign."""
    path = root / INDEX_NAME
    empty = _Index(version=VERSION, schema_=schema_fingerprint())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return empty
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_INDEX_BYTES:
        os.close(fd)
        return empty
    with os.fdopen(fd, "rb") as f:
        with _memo_lock:
            hit = _memo.get(str(path))
        if hit is not None and hit[0] == _key(st):
            return hit[1]
        try:
            index = _Index.model_validate_json(f.read())
        except (OSError, ValidationError, ValueError):
            return empty
    if index.version != VERSION or index.schema_ != schema_fingerprint():
        return empty
    with _memo_lock:
        _memo[str(path)] = (_key(st), index)
    return index


@contextlib.contextmanager
def _locked(root: Path, wait_s: float) -> Iterator[bool]:
    """The index's write lock, tried for up to `wait_s` seconds; yields whether it was had.
    Nobody ever waits long for a cache: who does not get the lock skips the write."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.01)
            except OSError:  # a filesystem without flock (some network mounts): no index writes, listings still work
                yield False
                return
        yield True
    finally:
        os.close(fd)


def _store(root: Path, index: _Index) -> None:
    """Write the index (temporary file, then rename: a reader never sees a torn one). No fsync: it is a cache."""
    path = root / INDEX_NAME
    tmp = root / f".{INDEX_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.write_bytes(index.model_dump_json().encode())
        os.replace(tmp, path)
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        tmp.unlink(missing_ok=True)
        return  # a read-only store is listed all the same, from the run.json files
    with _memo_lock:
        _memo[str(path)] = (_key(st), index)


def list_states(root: Path) -> list[RunState]:
    """Every run of the store at `root` (a local directory), newest first, from the index where it is current.

    One `stat` per `<run>/run.json`; a run.json is read only when its (mtime, size, inode) differ
    from the index's entry. The returned states are copies: changing one changes no cache."""
    index = _load(root)
    seen: dict[str, _Entry] = {}
    changed = False
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for d in entries:
        if d.name.startswith("."):
            continue  # the index, its lock, temporary files: never a run
        path = d.path + "/run.json"
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        known = index.runs.get(d.name)
        if known is not None and (known.mtime_ns, known.size, known.ino) == _key(st):
            seen[d.name] = known
            continue
        state = _read_state(path)
        if state is not None:  # a run.json that is not a RunState is left out (and read again next time), as before
            seen[d.name] = _Entry(mtime_ns=st.st_mtime_ns, size=st.st_size, ino=st.st_ino, state=state)
            changed = True
    if changed or len(seen) != len(index.runs):
        with _locked(root, wait_s=0) as have:
            if have:
                _store(root, _Index(version=VERSION, schema_=schema_fingerprint(), runs=seen))
    states = [e.state.model_copy() for e in seen.values()]
    return sorted(states, key=lambda s: s.created_at, reverse=True)


def note(root: Path, state: RunState, state_path: Path) -> None:
    """Refresh one run's entry after its run.json was written (RunStore.write_state calls this).
    Does nothing when the store has no index yet (the next listing builds it) or its lock is busy."""
    if not (root / INDEX_NAME).is_file():
        return
    with _locked(root, wait_s=0.2) as have:
        if not have:
            return
        try:  # the file and its stat from one open: what the entry keys is what it holds
            with open(state_path, "rb") as f:
                st, data = os.fstat(f.fileno()), f.read()
        except OSError:
            return
        runs = dict(_load(root).runs)
        if data == state.model_dump_json(indent=1).encode():
            runs[state_path.parent.name] = _Entry(mtime_ns=st.st_mtime_ns, size=st.st_size, ino=st.st_ino,
                                                  state=state.model_copy())
        else:  # another writer's run.json replaced ours meanwhile: the next listing reads that one
            runs.pop(state_path.parent.name, None)
        _store(root, _Index(version=VERSION, schema_=schema_fingerprint(), runs=runs))
