"""Reading and copying what an agent wrote, without trusting any of it.

Everything under an attempt's submission/, code/ and logs/ is hostile: a name may be
a symlink to the answers, a directory may be a symlink to a host folder, a file may be
a hard link to a host file, a FIFO that never delivers, a device, a socket, or 2 GB.
Every function here opens paths one component at a time beneath a directory the host
chose, with `O_NOFOLLOW` at every step, checks what it opened with `fstat` (a regular
file with one link, no larger than the cap) before reading a byte, and writes only
with `O_CREAT | O_EXCL | O_NOFOLLOW` beneath a destination directory it opened itself.
A refusal is an `UnsafeFile` whose message names the rule that was broken.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Optional, Union

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO never blocks the open
MAX_DEPTH = 32
_CHUNK = 1 << 20

Root = Union[Path, str, int]  # a directory path the host chose, or an open directory fd


class UnsafeFile(ValueError):
    """An agent's file was refused; the message names the file and the rule."""


def clip(text: Optional[str], limit: int = 300) -> Optional[str]:
    """`text` cut to at most `limit` characters (the cut marked), for agent-derived text in rows."""
    if text is None or len(text) <= limit:
        return text
    mark = f"... [{len(text)} chars, cut]"
    return text[: max(0, limit - len(mark))] + mark


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def _open_root(root: Root) -> tuple[int, bool]:
    """An fd for `root` and whether we own it (and must close it)."""
    if isinstance(root, int):
        return root, False
    return os.open(str(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), True


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafeFile(f"{rel!r}: a name must stay beneath its directory (no '..', not empty)")
    return parts


def open_beneath(root: Root, rel: str, max_bytes: int) -> tuple[int, int]:
    """Open the regular file `rel` (a '/'-separated relative name) beneath `root` for reading.

    No component may be a symlink, the file must be a regular file with exactly one
    link and at most `max_bytes` bytes. Returns (fd, size in bytes); the caller closes fd.
    Raises FileNotFoundError when it is not there, UnsafeFile when it breaks a rule."""
    parts = _parts(rel)
    fd, owned = _open_root(root)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink, or a file where a folder should be
                    raise UnsafeFile(f"{rel}: {part!r} is not a plain directory (symlinks are never followed)") from None
                raise
            if owned:
                os.close(fd)
            fd, owned = nxt, True
        # look before opening: opening a device or a FIFO may have effects of its own
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{rel} is {_kind(st.st_mode)}, not a regular file (symlinks are never followed)"
                             if stat.S_ISLNK(st.st_mode) else f"{rel} is {_kind(st.st_mode)}, not a regular file")
        try:
            f = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafeFile(f"{rel} is a symlink (symlinks are never followed)") from None
            raise
    finally:
        if owned:
            os.close(fd)
    st = os.fstat(f)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = f"{rel} is {_kind(st.st_mode)}, not a regular file"
    elif st.st_nlink != 1:
        why = f"{rel} is a hard link ({st.st_nlink} names for one file); hard links are refused"
    elif st.st_size > max_bytes:
        why = f"{rel} is {st.st_size / 1024**2:.1f} MB, over the {max_bytes / 1024**2:g} MB limit"
    if why:
        os.close(f)
        raise UnsafeFile(why)
    return f, st.st_size


def read_beneath(root: Root, rel: str, max_bytes: int) -> bytes:
    """The bytes of `rel` beneath `root` (at most `max_bytes`), under the rules of `open_beneath`."""
    f, size = open_beneath(root, rel, max_bytes)
    with os.fdopen(f, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the check
        raise UnsafeFile(f"{rel} is over the {max_bytes / 1024**2:g} MB limit")
    return data


def read_fd(fd: int, size: int) -> bytes:
    """At most `size` bytes from an fd that `walk_beneath` or `open_beneath` gave (the fd stays open)."""
    with os.fdopen(os.dup(fd), "rb") as fh:
        return fh.read(size)


def tree_bytes(root: Path, stop_at: int, max_entries: int = 200_000) -> int:
    """Bytes allocated on disk beneath `root` (st_blocks, links not followed), counted until the sum
    passes `stop_at` or `max_entries` entries were seen, so a hostile tree cannot make it slow."""
    total, seen = 0, 0
    stack = [str(root)]
    while stack and total <= stop_at and seen < max_entries:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    seen += 1
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
        except OSError:
            continue
    return total


@dataclass
class CopyReport:
    """What a tree copy took and what it refused (name: rule), sizes in bytes."""

    files: int = 0
    bytes: int = 0
    refused: dict[str, str] = field(default_factory=dict)

    def refuse(self, name: str, why: str, keep: int = 50) -> None:
        if len(self.refused) < keep:
            self.refused[name] = why


def walk_regular_files(root: Path) -> Iterator[tuple[str, Path, int]]:
    """(path relative to `root` with `/` separators, full path, size in bytes) of every regular
    file beneath the directory `root` (which the caller trusts), sorted, never following or listing
    symlinks, skipping the store's temporary files (`.<name>.tmp`). For listings of a run directory;
    FIFOs, devices and sockets are left out, and reading a listed file must still check it."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if name.startswith(".") and name.endswith(".tmp"):
                continue
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield full.relative_to(root).as_posix(), full, st.st_size


def walk_beneath(root: Root, max_files: int, max_bytes: int, report: CopyReport,
                 skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, int, int]]:
    """Every regular single-link file beneath `root`, as (relative name, open fd, size in bytes),
    depth-first in name order, stopping at `max_files` files or `max_bytes` bytes in total.
    Symlinks, hard links, FIFOs, devices and sockets are skipped and noted in `report`;
    top-level names in `skip` are left out. The caller must not close the yielded fd."""
    fd, owned = _open_root(root)
    try:
        yield from _walk(fd, "", 0, max_files, max_bytes, report, skip)
    finally:
        if owned:
            os.close(fd)


def _walk(fd: int, prefix: str, depth: int, max_files: int, max_bytes: int, report: CopyReport,
          skip: frozenset[str]) -> Iterator[tuple[str, int, int]]:
    try:
        names = sorted(os.listdir(fd))
    except OSError as e:
        report.refuse(prefix or ".", f"unreadable: {e.strerror}")
        return
    for name in names:
        rel = prefix + name
        if depth == 0 and name in skip:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if depth >= MAX_DEPTH:
                report.refuse(rel, f"nested deeper than {MAX_DEPTH} folders")
                continue
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                report.refuse(rel, f"not opened: {e.strerror}")
                continue
            try:
                yield from _walk(sub, rel + "/", depth + 1, max_files, max_bytes, report, skip)
            finally:
                os.close(sub)
            continue
        if report.files >= max_files:
            report.refuse(rel, f"over the limit of {max_files} files")
            continue
        try:
            f, size = open_beneath(fd, name, max_bytes - report.bytes)
        except UnsafeFile as e:
            report.refuse(rel, str(e).removeprefix(name).strip() if str(e).startswith(name) else str(e))
            continue
        except OSError as e:
            report.refuse(rel, f"not opened: {e.strerror}")
            continue
        try:
            report.files += 1
            report.bytes += size
            yield rel, f, size
        finally:
            os.close(f)


def copy_tree(root: Root, dest: Path, max_files: int, max_bytes: int,
              skip: frozenset[str] = frozenset(), report: Optional[CopyReport] = None) -> CopyReport:
    """Copy the regular files beneath `root` into the directory `dest` (created if missing),
    under the rules of `walk_beneath`. Never follows a link on either side and never writes
    outside `dest`; existing files in `dest` are never replaced (the agent's copy is refused)."""
    report = report or CopyReport()
    dest.mkdir(parents=True, exist_ok=True)
    out = os.open(str(dest), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for rel, f, size in walk_beneath(root, max_files, max_bytes, report, skip):
            try:
                _write_beneath(out, rel, f, size)
            except OSError as e:
                report.refuse(rel, f"not copied: {e.strerror}")
                report.files -= 1
                report.bytes -= size
    finally:
        os.close(out)
    return report


def _create_beneath(out: int, parts: list[str]) -> int:
    """A new file `parts` beneath the directory fd `out` (missing folders made), opened for writing;
    no component may be a symlink and the file must not exist yet."""
    fd, owned = out, False
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            if owned:
                os.close(fd)
            fd, owned = nxt, True
        return os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
    finally:
        if owned:
            os.close(fd)


def _write_beneath(out: int, rel: str, src: int, size: int) -> None:
    """Copy `size` bytes of `src` to a new file `rel` beneath `out`; holes stay holes (a sparse 2 GB file
    costs nothing on either disk)."""
    dst = _create_beneath(out, rel.split("/"))
    try:
        pos = 0
        while pos < size:
            try:
                data = os.lseek(src, pos, os.SEEK_DATA)
                hole = min(os.lseek(src, data, os.SEEK_HOLE), size)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole from here on
                    break
                data, hole = pos, size  # no SEEK_DATA on this filesystem: copy it all
            os.lseek(src, data, os.SEEK_SET)
            os.lseek(dst, data, os.SEEK_SET)
            left = hole - data
            while left > 0:
                chunk = os.read(src, min(_CHUNK, left))
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view):]
                left -= len(chunk)
            pos = hole
        os.ftruncate(dst, size)
    finally:
        os.close(dst)


def tar_tree(root: Root, tar: tarfile.TarFile, max_files: int, max_bytes: int, report: Optional[CopyReport] = None) -> CopyReport:
    """Add the regular files beneath `root` to an open tar (plain files only, mode 0644, owned by
    root), under the rules of `walk_beneath`: the receiving side never sees a link or a device."""
    report = report or CopyReport()
    for rel, f, size in walk_beneath(root, max_files, max_bytes, report):
        info = tarfile.TarInfo(rel)
        info.size, info.mode, info.type = size, 0o644, tarfile.REGTYPE
        with os.fdopen(os.dup(f), "rb") as fh:
            tar.addfile(info, fh)
    return report


def extract_tar(data: IO[bytes], dest: Path, max_files: int, max_bytes: int) -> CopyReport:
    """Unpack a tar stream into `dest`: regular files only, each written with the rules of
    `copy_tree` (no link followed, nothing outside `dest`), up to `max_files` and `max_bytes`."""
    report = CopyReport()
    dest.mkdir(parents=True, exist_ok=True)
    out = os.open(str(dest), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with tarfile.open(fileobj=data, mode="r|*") as tar:
            for m in tar:
                if m.isdir():
                    continue
                try:
                    parts = _parts(m.name)
                except UnsafeFile as e:
                    report.refuse(m.name[:200], str(e))
                    continue
                if not m.isreg():
                    report.refuse(m.name[:200], "not a regular file")
                    continue
                if report.files >= max_files or report.bytes + m.size > max_bytes:
                    report.refuse(m.name[:200], "over the artifact limits")
                    continue
                src = tar.extractfile(m)
                if src is None:
                    continue
                try:
                    _write_stream(out, parts, src, m.size)
                except OSError as e:
                    report.refuse(m.name[:200], f"not written: {e.strerror}")
                    continue
                report.files += 1
                report.bytes += m.size
    finally:
        os.close(out)
    return report


def _write_stream(out: int, parts: list[str], src: IO[bytes], size: int) -> None:
    with os.fdopen(_create_beneath(out, parts), "wb") as fh:
        left = size
        while left > 0:
            chunk = src.read(min(_CHUNK, left))
            if not chunk:
                break
            fh.write(chunk)
            left -= len(chunk)
