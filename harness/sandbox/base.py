"""The Sandbox interface: where one attempt's agent runs.

Every sandbox shows the agent the same mlebench paths (`/home/data` read-only,
`/home/submission`, `/home/logs`, `/home/code` writable, `/home/agent` its own
code read-only, `/home/instructions.md`), the same environment variables, and
reports in the same `SandboxResult`. Backends declare what they can do
(`supports_gpus`, `can_disable_internet`) instead of callers special-casing them.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar, Optional

from pydantic import BaseModel, ConfigDict

from harness.safe_files import CopyReport, copy_tree
from harness.sandbox.paths import AGENT, CODE, DATA, INSTRUCTIONS, LOGS, SUBMISSION, VALIDATE  # noqa: F401  (re-exported)
from harness.spec import AgentConfig, Resources, SandboxResult



#: agent.log keeps this much of the start and of the end of the agent's output (bytes); the middle is cut
LOG_HEAD_BYTES = 8 * 1024**2
LOG_TAIL_BYTES = 8 * 1024**2
#: an attempt's copied-out artifacts: at most this many files (their bytes are capped by resources.disk_gb)
MAX_ARTIFACT_FILES = 10_000


class Bind(BaseModel):
    """One extra host path shown inside the sandbox (a socket, a folder, a file)."""

    model_config = ConfigDict(frozen=True)

    source: Path
    target: str  # absolute path inside the sandbox
    read_only: bool = True


class SandboxJob(BaseModel):
    """One attempt as a sandbox sees it. Host paths; the sandbox maps them."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    attempt_id: str
    command: list[str]
    agent_dir: Path
    data_dir: Path
    attempt_dir: Path  # holds submission/ logs/ code/ instructions.md
    env: dict[str, str] = {}
    resources: Resources = Resources()
    time_limit_s: float = 3600.0
    network: bool = False  # granted by the operator (see RunSpec.allow_network), never the agent alone
    image: Optional[str] = None
    binds: tuple[Bind, ...] = ()  # extra mounts, e.g. an LLM gateway's Unix socket
    #: a host folder (the node's work dir, never the store) where a backend may keep the agent's writable
    #: dirs while it runs; None: beside the attempt dir
    scratch_dir: Optional[Path] = None

    @property
    def disk_bytes(self) -> int:
        return int(self.resources.disk_gb * 1024**3)

    @property
    def submission_dir(self) -> Path:
        return self.attempt_dir / "submission"

    @property
    def logs_dir(self) -> Path:
        return self.attempt_dir / "logs"

    @property
    def code_dir(self) -> Path:
        return self.attempt_dir / "code"

    @property
    def log_path(self) -> Path:
        return self.logs_dir / "agent.log"

    @property
    def instructions_path(self) -> Path:
        return self.attempt_dir / "instructions.md"


#: what is left on a writable tmpfs (bytes) below which a failed attempt is said to have hit the disk cap
FULL_BYTES = 1024**2
ENOSPC = "No space left on device"  # in the log tail: the agent hit the disk cap somewhere
#: the agent's writable dirs under /home, copied back into the attempt dir after every ending
WRITABLE_DIRS = ("submission", "code", "logs")
#: harness's own files in logs/, never the agent's (neither seeded in nor copied back)
RESERVED_LOGS = frozenset({"agent.log", "sandbox.json"})


def _host_dir(job: SandboxJob, name: str) -> Path:
    return {"submission": job.submission_dir, "code": job.code_dir, "logs": job.logs_dir}[name]


def seed_writable(job: SandboxJob, home: Path) -> None:
    """What harness put in the attempt's writable dirs before the start (a grader's runner script, say)
    moves into `home`/<dir> (the sandbox's own /home), before the agent runs; it comes back with
    `copy_back` if the agent keeps it."""
    for name in WRITABLE_DIRS:
        host = _host_dir(job, name)
        entries = [p for p in host.iterdir() if not (name == "logs" and p.name in RESERVED_LOGS)] if host.is_dir() else []
        if not entries:
            continue
        copy_tree(host, home / name, MAX_ARTIFACT_FILES, job.disk_bytes, skip=RESERVED_LOGS if name == "logs" else frozenset())
        for p in entries:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def copy_inputs(job: SandboxJob, dest: Path) -> None:
    """The attempt's instructions.md and validate script (harness wrote them in the attempt dir) as
    `dest`/instructions.md and `dest`/validate_submission.sh, for a sandbox to show at INSTRUCTIONS and
    VALIDATE without mounting a path of the store."""
    for src, name, mode in ((job.instructions_path, "instructions.md", 0o644),
                            (job.attempt_dir / ".validate_submission.sh", "validate_submission.sh", 0o755)):
        if src.is_file() and not src.is_symlink():
            shutil.copyfile(src, dest / name)
            os.chmod(dest / name, mode)


def copy_back(home: int, job: SandboxJob) -> dict[str, object]:
    """submission/, code/ and logs/ beneath the directory fd `home` (what the agent saw as /home) into
    the attempt's host dirs, by the rules of harness.safe_files; returns what was copied and refused."""
    report = CopyReport()
    for name in WRITABLE_DIRS:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home)
        except OSError:
            continue
        try:
            copy_tree(fd, _host_dir(job, name), MAX_ARTIFACT_FILES, job.disk_bytes,
                      skip=RESERVED_LOGS if name == "logs" else frozenset(), report=report)
        finally:
            os.close(fd)
    return {"files": report.files, "bytes": report.bytes, "refused": {k[:200]: v for k, v in report.refused.items()}}


def log_tail(path: Path, n: int) -> str:
    """The last `n` bytes of the text file `path` (decoded leniently, stripped); "" when unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - n))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


class SandboxUnavailable(RuntimeError):
    """The backend cannot run here (no engine, no image); the message says what to do."""


class Sandbox(ABC):
    """One backend. `run` never raises for what the agent did: agent failures,
    timeouts and OOMs come back as a SandboxResult; so do infrastructure failures
    (status `infra_error`), which the orchestrator retries."""

    name: ClassVar[str]
    supports_gpus: ClassVar[bool] = False
    can_disable_internet: ClassVar[bool] = True

    @classmethod
    def available(cls) -> Optional[str]:
        """None when this backend can run here, else one line saying why not and what to do."""
        return None

    def attempt_init(self, job: SandboxJob) -> None:
        """Before the agent starts: create the attempt's writable dirs."""
        for d in (job.submission_dir, job.logs_dir, job.code_dir):
            d.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def run(self, job: SandboxJob, cancel: Optional[threading.Event] = None) -> SandboxResult:
        """Run the agent to completion, the time limit, or `cancel`."""

    def attempt_cleanup(self, job: SandboxJob) -> None:  # noqa: B027  (a hook: most backends need nothing)
        """After the agent ended, whatever happened: release what `run` held."""

    @staticmethod
    def write_record(job: SandboxJob, result: SandboxResult, **details: object) -> None:
        """logs/sandbox.json: how the attempt was run and how it ended, for the artifacts."""
        record = {"attempt_id": job.attempt_id, "command": job.command, "resources": job.resources.model_dump(),
                  "time_limit_s": job.time_limit_s, "network": job.network, **details, **result.model_dump()}
        job.logs_dir.mkdir(parents=True, exist_ok=True)
        (job.logs_dir / "sandbox.json").write_text(json.dumps(record, indent=1, default=str))


class CappedLog:
    """agent.log, written as output arrives, that keeps the first LOG_HEAD_BYTES and the
    last LOG_TAIL_BYTES of it (in memory, at most that) and marks the cut between them."""

    def __init__(self, path: Path, head: Optional[int] = None, tail: Optional[int] = None) -> None:
        self.file = open(path, "ab", buffering=0)
        self.head_left = LOG_HEAD_BYTES if head is None else head
        self.tail_max = LOG_TAIL_BYTES if tail is None else tail
        self.kept = (self.head_left, self.tail_max)
        self.tail = bytearray()
        self.total = 0
        self.cut = 0

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.head_left > 0:
            first, chunk = chunk[: self.head_left], chunk[self.head_left:]
            self.file.write(first)
            self.head_left -= len(first)
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_max:
                drop = len(self.tail) - self.tail_max
                del self.tail[:drop]
                self.cut += drop

    def pump(self, fd: int) -> None:
        """Copy everything readable from `fd` until EOF (run in a thread)."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            self.write(chunk)

    def close(self) -> None:
        if self.cut:
            self.file.write(f"\n[harness] ... {self.cut} bytes of output cut here (agent.log keeps the first "
                            f"{self.kept[0]} and the last {self.kept[1]} bytes) ...\n".encode())
        self.file.write(bytes(self.tail))
        self.tail = bytearray()
        self.file.close()


def wait_for_end(ended: threading.Event, deadline: float, cancel: Optional[threading.Event] = None,
                 tick: Callable[[], None] = lambda: None) -> Optional[str]:
    """Block until `ended` is set (returns None), the `time.monotonic()` deadline passes
    ("timeout") or `cancel` is set ("cancelled"). `tick` runs about every 0.25 s."""
    while True:
        tick()
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        if cancel is not None and cancel.is_set():
            return "cancelled"
        if ended.wait(min(left, 0.25)):
            return None


def agent_command(agent: AgentConfig) -> list[str]:
    """The argv an agent starts with: its `command` (a list, or one shell line), else, as in
    mlebench, `bash /home/agent/start.sh` and its kwargs (`--key value` for argparse, `key=value` for omegaconf)."""
    if isinstance(agent.command, list):
        return list(agent.command)
    if agent.command:
        return ["/bin/sh", "-c", agent.command]
    if not agent.start:
        return ["false"]
    argv = ["bash", f"{AGENT}/{Path(agent.start).name}"]
    if agent.kwargs_type == "argparse":
        for key, value in agent.kwargs.items():
            argv += [f"--{key}", str(value)]
    elif agent.kwargs_type == "omegaconf":
        argv += [f"{key}={value}" for key, value in agent.kwargs.items()]
    return argv

