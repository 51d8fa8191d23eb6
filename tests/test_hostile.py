"""Hostile agents cannot win: what an agent writes is read and copied without trusting it,
and (in both sandboxes, harness running as whatever user CI runs it as, root included)
nothing the agent does lifts a limit, changes a file outside its attempt, or scores from the answers.

Every probe is a tiny shell agent; the file rules are checked on real files (symlinks,
hard links, FIFOs, devices, 2 GB sparse files) without any sandbox first.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from harness.grading import InvalidSubmissionError, read_submission
from harness.safe_files import CopyReport, UnsafeFile, copy_tree, extract_tar, read_beneath, tar_tree
from harness.tasks import REFUSED, CompetitionTask

REPO = Path(__file__).resolve().parent.parent
TWO_GB = 2 * 1024**3


# ---------------------------------------------------------------- the file rules, on real files


@pytest.fixture
def attempt(tmp_path: Path) -> Path:
    """An attempt dir with private answers next to it, as in the store and the data cache."""
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "answers.csv").write_text("id,y\n1,1\n2,0\n")
    for d in ("submission", "code", "logs"):
        (tmp_path / "attempt" / d).mkdir(parents=True)
    return tmp_path / "attempt"


def _refusal(attempt: Path) -> str:
    out = CompetitionTask().outputs(attempt)
    assert "submission.csv" not in out, "a hostile submission was read"
    return out[REFUSED].decode()


def test_symlinked_submission_to_the_answers_is_refused(attempt: Path) -> None:
    os.symlink("../../private/answers.csv", attempt / "submission" / "submission.csv")
    assert (attempt / "submission" / "submission.csv").read_text().startswith("id,y")  # the link works for a follower
    assert "symlink" in _refusal(attempt)
    with pytest.raises(InvalidSubmissionError, match="symlink"):
        read_submission(attempt / "submission" / "submission.csv")


def test_symlinked_parent_directory_is_refused(attempt: Path) -> None:
    os.symlink(str(attempt.parent / "private"), attempt / "submission" / "sub")
    with pytest.raises(UnsafeFile, match="not a plain directory"):
        read_beneath(attempt / "submission", "sub/answers.csv", 1 << 20)
    with pytest.raises(UnsafeFile, match="beneath"):
        read_beneath(attempt / "submission", "../../private/answers.csv", 1 << 20)


def test_hard_link_to_an_outside_file_is_refused(attempt: Path) -> None:
    os.link(attempt.parent / "private" / "answers.csv", attempt / "submission" / "submission.csv")
    assert "hard link" in _refusal(attempt)


def test_fifo_does_not_hang_the_reader(attempt: Path) -> None:
    os.mkfifo(attempt / "submission" / "submission.csv")
    done: dict[str, str] = {}
    t = threading.Thread(target=lambda: done.setdefault("why", _refusal(attempt)), daemon=True)
    t.start()
    t.join(20)
    assert "FIFO" in done.get("why", ""), "the reader hung on a FIFO"
    with pytest.raises(InvalidSubmissionError, match="FIFO"):
        read_submission(attempt / "submission" / "submission.csv")


def test_device_and_socket_are_refused(attempt: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(attempt / "submission" / "submission.csv"))
    assert "socket" in _refusal(attempt)
    sock.close()
    if os.getuid() == 0:
        os.mknod(attempt / "code" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        with pytest.raises(UnsafeFile, match="character device"):
            read_beneath(attempt / "code", "null", 1 << 20)


def test_two_gb_submission_is_refused_without_reading_it(attempt: Path) -> None:
    with open(attempt / "submission" / "submission.csv", "wb") as f:
        f.truncate(TWO_GB)  # sparse: 2 GB to stat, nothing on disk
    assert "over the" in _refusal(attempt)


def test_copy_and_tar_never_follow_links_or_write_outside(attempt: Path, tmp_path: Path) -> None:
    sub = attempt / "submission"
    (sub / "ok.csv").write_text("id,y\n")
    (sub / "deep").mkdir()
    (sub / "deep" / "x.txt").write_text("x")
    os.symlink("../../private/answers.csv", sub / "link.csv")
    os.symlink(str(tmp_path / "private"), sub / "dirlink")
    os.link(tmp_path / "private" / "answers.csv", sub / "hard.csv")
    os.mkfifo(sub / "fifo")
    dest = tmp_path / "copy"
    report = copy_tree(sub, dest, max_files=100, max_bytes=1 << 20)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["deep/x.txt", "ok.csv"]
    assert set(report.refused) == {"link.csv", "dirlink", "hard.csv", "fifo"}, report.refused
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    # the caps hold
    capped = copy_tree(sub, tmp_path / "capped", max_files=1, max_bytes=1 << 20)
    assert capped.files == 1
    # a tarball with links, '..' names and devices unpacks to regular files only, inside dest
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar_tree(sub, tar, 100, 1 << 20)
        for name, kind in (("../escape.txt", tarfile.REGTYPE), ("sym", tarfile.SYMTYPE), ("dev", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info, io.BytesIO(b""))
    out = tmp_path / "unpacked"
    rep = extract_tar(io.BytesIO(buf.getvalue()), out, 100, 1 << 20)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["deep/x.txt", "ok.csv"]
    assert not (tmp_path / "escape.txt").exists() and len(rep.refused) == 3
    assert isinstance(report, CopyReport)
