"""The local sandbox: bubblewrap, cgroup v1 limits (rlimits where cgroups are not
writable), and a wall-clock limit that ends the whole process tree.

Inside, the agent gets a fresh root with only: the system's /usr (and the usual
/bin, /lib links), a curated /etc, the Python that runs harness (read-only),
the harness package with its competitions folder hidden, the public data
(read-only), its own agent code (read-only), and its own attempt dirs
(writable). Network is a private namespace with no interfaces but loopback.
The source datasets that built-in competitions are made from (they ship inside
PyPI packages) are hidden too, so the answers cannot be rebuilt from them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Optional

from harness.sandbox.base import AGENT, CODE, DATA, INSTRUCTIONS, LOGS, SUBMISSION, VALIDATE, Sandbox, SandboxJob, wait_for_end
from harness.spec import Isolation, Resources, SandboxResult

HARNESS_PKG = Path(__file__).resolve().parent.parent
SANDBOX_HARNESS = "/opt/harness"
#: folders of the harness package an agent must not see: competitions (preparers, graders,
#: reference solutions) and technique tasks (planted truths, reference outputs)
HIDDEN_HARNESS_DIRS = ("competitions", "technique_tasks")

#: package data that built-in competitions are made from; hidden from agents
HIDDEN_PACKAGE_DATA = [
    ("sklearn", "datasets/data"),
    ("sklearn", "datasets/descr"),
    ("sklearn", "datasets/images"),
    ("aeon", "datasets/data"),
    ("sktime", "datasets/data"),
    ("palmerpenguins", "data"),
    ("statsmodels", "datasets"),
]
ETC_FILES = ["passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
             "localtime", "ssl", "ca-certificates", "alternatives", "mime.types", "fonts", "matplotlibrc"]
_OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "Killed")


class LocalSandbox(Sandbox):
    name = "local"
    supports_gpus = False
    can_disable_internet = True

    def run(self, job: SandboxJob, cancel: Optional[threading.Event] = None) -> SandboxResult:
        self.attempt_init(job)
        # HARNESS_NO_BWRAP / HARNESS_NO_CGROUP force the fallbacks (for tests and odd hosts)
        isolation: Isolation = "bwrap" if not os.environ.get("HARNESS_NO_BWRAP") and bwrap_usable() else "none"
        if isolation == "none":
            _warn_no_bwrap()
        use_cgroup = not os.environ.get("HARNESS_NO_CGROUP") and cgroup_usable()
        cgroup = CgroupV1.create(f"{job.attempt_id[:80]}-{uuid.uuid4().hex[:8]}", job.resources) if use_cgroup else None
        status_file = tempfile.NamedTemporaryFile(prefix="bwrap-status-", delete=False)
        home = None if isolation == "bwrap" else tempfile.mkdtemp(prefix="harness-home-")
        try:
            argv, env = self._command(job, isolation, cgroup, status_file.fileno(), home)
            result = self._supervise(job, argv, env, isolation, cgroup, cancel, status_file)
        except OSError as e:
            result = SandboxResult(status="infra_error", isolation=isolation, error=f"could not start the sandbox: {e}")
        finally:
            status_file.close()
            os.unlink(status_file.name)
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)
            if cgroup is not None:
                cgroup.remove()
        self.write_record(job, result, sandbox="local", cgroup=cgroup is not None)
        return result

    # -------------------------------------------------------------- building the command

    def _command(self, job: SandboxJob, isolation: Isolation, cgroup: Optional["CgroupV1"], status_fd: int,
                 host_home: Optional[str]) -> tuple[list[str], dict[str, str]]:
        inside = isolation == "bwrap"
        paths = {
            "DATA_DIR": DATA if inside else str(job.data_dir),
            "SUBMISSION_DIR": SUBMISSION if inside else str(job.submission_dir),
            "LOGS_DIR": LOGS if inside else str(job.logs_dir),
            "CODE_DIR": CODE if inside else str(job.code_dir),
            "AGENT_DIR": AGENT if inside else str(job.agent_dir),
            "INSTRUCTIONS": INSTRUCTIONS if inside else str(job.instructions_path),
        }
        home = "/tmp" if inside else str(host_home)
        py_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": f"{py_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": "/tmp" if inside else home,
            "PYTHONPATH": SANDBOX_HARNESS if inside else str(HARNESS_PKG.parent),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MPLCONFIGDIR": f"{home}/.mpl",
            "OMP_NUM_THREADS": str(max(1, int(job.resources.cpus))),
            "OPENBLAS_NUM_THREADS": str(max(1, int(job.resources.cpus))),
            "VALIDATE_SUBMISSION": VALIDATE if inside else f"{sys.executable} -m harness.validate",
            **{k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_CORETYPE") or k == "OPENBLAS_L2_SIZE"},
            **paths,
            **job.env,
        }
        cmd = list(job.command)
        if inside:
            cmd = self._bwrap_argv(job, status_fd) + cmd
        if cgroup is None:
            cmd = _rlimit_prefix(job.resources) + cmd
        if cgroup is not None:
            # join the cgroups before exec, so every descendant is counted and killable
            joins = " && ".join(f"echo $$ > {shlex.quote(str(p))}" for p in cgroup.procs_files)
            cmd = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sandbox", *cmd]
        return cmd, env

    def _bwrap_argv(self, job: SandboxJob, status_fd: int) -> list[str]:
        a = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--json-status-fd", str(status_fd)]
        if job.network:
            a.append("--share-net")
        for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = Path("/") / top
            if p.is_symlink():
                a += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                a += ["--ro-bind", str(p), str(p)]
        for name in ETC_FILES:
            a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        a += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/home"]
        for p in _python_roots():
            a += ["--ro-bind", p, p]
        a += ["--ro-bind", str(HARNESS_PKG), f"{SANDBOX_HARNESS}/harness"]
        for sub in HIDDEN_HARNESS_DIRS:
            a += ["--tmpfs", f"{SANDBOX_HARNESS}/harness/{sub}"]
        for p in _hidden_package_dirs():
            a += ["--tmpfs", p]
        a += [
            "--ro-bind", str(job.data_dir), DATA,
            "--bind", str(job.submission_dir), SUBMISSION,
            "--bind", str(job.logs_dir), LOGS,
            "--bind", str(job.code_dir), CODE,
            "--ro-bind", str(job.agent_dir), AGENT,
        ]
        if job.instructions_path.is_file():
            a += ["--ro-bind", str(job.instructions_path), INSTRUCTIONS]
        validator = job.attempt_dir / ".validate_submission.sh"
        if validator.is_file():
            a += ["--ro-bind", str(validator), VALIDATE]
        a += ["--chdir", AGENT, "--hostname", "sandbox", "--"]
        return a

    # -------------------------------------------------------------- running it

    def _supervise(self, job: SandboxJob, argv: list[str], env: dict[str, str], isolation: Isolation,
                   cgroup: Optional["CgroupV1"], cancel: Optional[threading.Event], status_file) -> SandboxResult:
        job.logs_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(job.log_path, "ab", buffering=0) as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=str(job.agent_dir), start_new_session=True, close_fds=True, pass_fds=(status_file.fileno(),),
            )
            waiter = _Waiter(proc)
            why = wait_for_end(waiter.done, t0 + job.time_limit_s, cancel)
            if why:
                _kill_tree(proc.pid, cgroup)
                waiter.done.wait(10)
            seconds = time.monotonic() - t0
            if why:
                log.write(f"\n[harness] {why} after {seconds:.1f}s (limit {job.time_limit_s:g}s): process tree killed\n".encode())
        _kill_tree(proc.pid, cgroup)  # stragglers that left the process group
        exit_code = waiter.exit_code
        peak = cgroup.peak_memory_mb() if cgroup else waiter.maxrss_mb
        started = _bwrap_started(status_file.name) if isolation == "bwrap" else True
        if why:
            status = why
        elif cgroup is not None and cgroup.oom_killed():
            status = "oom"
        elif not started:
            return SandboxResult(status="infra_error", isolation=isolation, exit_code=exit_code, agent_seconds=seconds,
                                 error="bubblewrap failed to set up the sandbox: " + _log_tail(job.log_path, 300))
        elif exit_code == 0:
            status = "succeeded"
        elif cgroup is None and any(m in _log_tail(job.log_path, 2000) for m in _OOM_MARKERS):
            status = "oom"
        else:
            status = "agent_failed"
        error = None
        if status == "oom":
            error = f"memory limit of {job.resources.memory_gb:g} GB exceeded"
        elif status == "agent_failed":
            error = f"agent exited with code {exit_code}"
        elif status == "timeout":
            error = f"time limit of {job.time_limit_s:g}s exceeded"
        return SandboxResult(status=status, exit_code=exit_code, isolation=isolation, agent_seconds=seconds,
                             peak_memory_mb=peak, error=error)


class _Waiter:
    """Reaps the child in a thread with wait4, so completion wakes the supervisor at
    once (no polling delay) and the child's peak RSS comes back with it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.done = threading.Event()
        self.exit_code: Optional[int] = None
        self.maxrss_mb: Optional[float] = None
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.exit_code = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.exit_code
            self.maxrss_mb = usage.ru_maxrss / 1024.0
        except ChildProcessError:
            self.exit_code = self.proc.returncode
        finally:
            self.done.set()


def _kill_tree(pid: int, cgroup: Optional["CgroupV1"]) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if cgroup is not None:
        cgroup.kill_all()


def _rlimit_prefix(res: Resources) -> list[str]:
    prlimit = shutil.which("prlimit")
    if not prlimit:
        return []
    mem = int(res.memory_gb * 1024**3)
    return [prlimit, f"--data={mem}", f"--nproc={res.pids * 16}", "--"]


def _bwrap_started(status_path: str) -> bool:
    try:
        text = Path(status_path).read_text()
    except OSError:
        return False
    return any("child-pid" in json.loads(line) for line in text.splitlines() if line.strip().startswith("{"))


def _log_tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - n))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _python_roots() -> tuple[str, ...]:
    """The interpreter's install trees (a venv and its base), read-only inside."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.realpath(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))))
    for p in sys.path:
        if "site-packages" in p or "dist-packages" in p:
            rp = os.path.realpath(p)
            if os.path.isdir(rp) and not any(rp.startswith(r + os.sep) for r in roots):
                roots.add(rp)
    system = ("/usr", "/bin", "/lib", "/lib64", "/sbin")
    # /usr is bound already; binding a root twice (or / itself) would expose too much
    return tuple(sorted(r for r in roots if r != "/" and not any(r == s or r.startswith(s + "/") for s in system)))


@functools.lru_cache(maxsize=1)
def _hidden_package_dirs() -> tuple[str, ...]:
    out = []
    for pkg, sub in HIDDEN_PACKAGE_DATA:
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            continue
        for loc in (spec.submodule_search_locations or []) if spec else []:
            p = Path(loc) / sub
            if p.is_dir():
                out.append(str(p))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def bwrap_usable() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    probe = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


_warned = False


def _warn_no_bwrap() -> None:
    global _warned
    if not _warned:
        _warned = True
        msg = ("bubblewrap (bwrap) is not usable here: agents run WITHOUT isolation (isolation=none) and can read "
               "everything this user can, answers included. Install it: apt-get install -y bubblewrap")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        print(f"WARNING: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- cgroup v1

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "pids")


@functools.lru_cache(maxsize=1)
def cgroup_usable() -> bool:
    """cgroup v1 memory/cpu/pids hierarchies where this process may create groups."""
    probe = f"harness-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    made = []
    try:
        for c in CONTROLLERS:
            d = CGROUP_ROOT / c / probe
            d.mkdir(parents=True)
            made.append(d)
            if not (d / "cgroup.procs").exists():
                return False
        return (CGROUP_ROOT / "memory" / probe / "memory.limit_in_bytes").exists()
    except OSError:
        return False
    finally:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass


class CgroupV1:
    """One attempt's memory, cpu and pids cgroups."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, name: str, res: Resources) -> "CgroupV1":
        # top level, not under a shared parent: in cgroup v1 a parent group's cpu.shares would
        # make all attempts together weigh as much as one process against the rest of the machine
        dirs = {c: CGROUP_ROOT / c / f"harness-{name}" for c in CONTROLLERS}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        mem = dirs["memory"]
        limit = str(int(res.memory_gb * 1024**3))
        (mem / "memory.limit_in_bytes").write_text(limit)
        _try_write(mem / "memory.memsw.limit_in_bytes", limit)  # no swapping past the limit
        _try_write(dirs["cpu"] / "cpu.cfs_period_us", "100000")
        _try_write(dirs["cpu"] / "cpu.cfs_quota_us", str(int(res.cpus * 100000)))
        _try_write(dirs["pids"] / "pids.max", str(res.pids))
        return cls(dirs)

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.dirs["pids"] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def peak_memory_mb(self) -> Optional[float]:
        try:
            return int((self.dirs["memory"] / "memory.max_usage_in_bytes").read_text()) / 1024**2
        except (OSError, ValueError):
            return None

    def oom_killed(self) -> bool:
        try:
            fields = dict(line.split() for line in (self.dirs["memory"] / "memory.oom_control").read_text().splitlines())
        except (OSError, ValueError):
            return False
        return int(fields.get("oom_kill", 0)) > 0

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs.values():
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass
