"""Reading what an agent left in a run directory without trusting it.

Every path is relative to the run directory and checked part by part: no `..`,
no absolute paths, no symlink anywhere on the way; the file is opened with
O_NOFOLLOW and must be the regular file that was checked (same device and inode),
with a single link (a hard link could expose a file from outside the attempt).
FIFOs, devices and sockets are refused before they are opened, so nothing blocks.
Previews read at most a capped number of bytes.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from harness.safe_files import walk_regular_files

#: the most a page shows of one file inline, in bytes; the download link serves it whole
PREVIEW_BYTES = 256 * 1024
#: the most a page parses as JSON (trajectory, sandbox.json), in bytes
JSON_BYTES = 8 * 1024 * 1024
#: the most files listed for one attempt
MAX_LISTED = 2000

TEXT_SUFFIXES = {".log", ".txt", ".md", ".py", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".ipynb", ".sh",
                 ".cfg", ".toml", ".ini", ".r", ".R", ".sql", ".html", ".js", ".css"}
IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                  ".webp": "image/webp"}


class UnsafePath(LookupError):
    """The path names no regular file inside the run directory (or one that must not be read)."""


@dataclass(frozen=True)
class FileEntry:
    """One regular file: its path relative to the run directory and its size in bytes."""

    path: str
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    @property
    def is_image(self) -> bool:
        return self.suffix in IMAGE_SUFFIXES


def check_relative(path: str) -> list[str]:
    """The parts of a relative path, or UnsafePath for `..`, `.`, empty parts, absolute or odd names."""
    parts = path.split("/")
    if not path or path.startswith(("/", "\\")) or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise UnsafePath(path)
    return parts


def open_regular(root: Path, path: str) -> tuple[int, os.stat_result]:
    """An O_RDONLY file descriptor (the caller closes it) and its stat for `path` under `root`,
    refusing symlinks on the way, anything but a regular file, and files with more than one link
    under artifacts/ (agent-made hard links)."""
    parts = check_relative(path)
    here = root
    st: Optional[os.stat_result] = None
    for part in parts:
        here = here / part
        try:
            st = os.lstat(here)
        except OSError:
            raise UnsafePath(path) from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(path)
    assert st is not None
    if not stat.S_ISREG(st.st_mode) or (parts[0] == "artifacts" and st.st_nlink > 1):
        raise UnsafePath(path)
    try:
        fd = os.open(here, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise UnsafePath(path) from None
    fst = os.fstat(fd)
    if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(fst.st_mode):
        os.close(fd)  # swapped between the check and the open
        raise UnsafePath(path)
    return fd, fst


def read_capped(root: Path, path: str, limit: int = PREVIEW_BYTES) -> tuple[bytes, int]:
    """(the first `limit` bytes, the file's full size in bytes) of a checked file."""
    fd, st = open_regular(root, path)
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), st.st_size
    finally:
        os.close(fd)


def read_tail(root: Path, path: str, limit: int = PREVIEW_BYTES) -> tuple[bytes, int]:
    """(the last `limit` bytes, the full size in bytes) of a checked file: a log's tail."""
    fd, st = open_regular(root, path)
    try:
        start = max(0, st.st_size - limit)
        os.lseek(fd, start, os.SEEK_SET)
        data = b""
        while len(data) < limit:
            chunk = os.read(fd, min(limit - len(data), 1 << 16))
            if not chunk:
                break
            data += chunk
        return data, st.st_size
    finally:
        os.close(fd)


def iter_file(root: Path, path: str, chunk_bytes: int = 1 << 16) -> tuple[Iterator[bytes], int]:
    """A checked file streamed in chunks, and its size in bytes (for downloads)."""
    fd, st = open_regular(root, path)

    def chunks() -> Iterator[bytes]:
        try:
            while True:
                chunk = os.read(fd, chunk_bytes)
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    return chunks(), st.st_size


def read_json(root: Path, path: str) -> Optional[Any]:
    """The parsed JSON of a checked file, or None when it is missing, unsafe, too large or not JSON."""
    try:
        data, size = read_capped(root, path, JSON_BYTES)
    except UnsafePath:
        return None
    if size > JSON_BYTES:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def list_files(root: Path, under: str) -> list[FileEntry]:
    """Every regular file below `under` (relative to root), sorted, never following or listing
    symlinks; at most MAX_LISTED entries."""
    try:
        parts = check_relative(under)
    except UnsafePath:
        return []
    base = root
    for part in parts:  # os.walk would follow a symlink at the top
        base = base / part
        if base.is_symlink() or not base.is_dir():
            return []
    prefix = "".join(f"{part}/" for part in parts)
    return [FileEntry(prefix + rel, size) for rel, _, size in itertools.islice(walk_regular_files(base), MAX_LISTED)]


def decode_text(data: bytes) -> str:
    """Bytes as text for display (undecodable bytes replaced), or a note for binary data."""
    if b"\x00" in data[:8192]:
        return f"(binary data, {len(data)} bytes shown; use the download link)"
    return data.decode("utf-8", errors="replace")
