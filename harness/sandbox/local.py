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
import select
import shlex
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path, PurePosixPath
from typing import Optional

from harness.sandbox.base import CappedLog, Sandbox, SandboxJob, ENOSPC, FULL_BYTES, copy_back, copy_inputs, log_tail, seed_writable, wait_for_end
from harness.sandbox.paths import (AGENT, CODE, DATA, HARNESS_PKG, HIDDEN_HARNESS_DIRS, HIDDEN_PACKAGE_DATA, INSTRUCTIONS, LOGS,
                                   SANDBOX_HARNESS, SUBMISSION, VALIDATE)
from harness.spec import AttemptStatus, Isolation, Resources, SandboxResult

ETC_FILES = ["passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
             "localtime", "ssl", "ca-certificates", "alternatives", "mime.types", "fonts", "matplotlibrc"]
_OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "Killed")


#: the agent's uid and gid inside the sandbox when harness runs as root (a non-root harness's agent keeps its uid)
AGENT_UID = int(os.environ.get("HARNESS_SANDBOX_UID", "1000"))


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
        refusal = network_refusal() if job.network and isolation == "bwrap" else None
        if refusal:
            result = SandboxResult(status="infra_error", isolation=isolation, error=refusal)
            self.write_record(job, result, sandbox="local")
            return result
        use_cgroup = not os.environ.get("HARNESS_NO_CGROUP") and cgroup_usable()
        if use_cgroup:
            _collect_leftover_cgroups_once()
        cgroup = CgroupV1.create(f"{job.attempt_id[:80]}-{uuid.uuid4().hex[:8]}", job.resources) if use_cgroup else None
        home = None if isolation == "bwrap" else tempfile.mkdtemp(prefix="harness-home-")
        pipes = _Pipes() if isolation == "bwrap" else None
        copied: dict[str, object] = {}
        try:
            argv, env = self._command(job, isolation, cgroup, pipes, home)
            result = self._supervise(job, argv, env, isolation, cgroup, cancel, pipes, copied)
        except OSError as e:
            result = SandboxResult(status="infra_error", isolation=isolation, error=f"could not start the sandbox: {e}")
        finally:
            if pipes is not None:
                pipes.close()
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)
            if cgroup is not None:
                cgroup.remove()
        self.write_record(job, result, sandbox="local", cgroup=cgroup is not None,
                          agent_uid=AGENT_UID if os.getuid() == 0 else os.getuid(), **copied)
        return result

    # -------------------------------------------------------------- building the command

    def _command(self, job: SandboxJob, isolation: Isolation, cgroup: Optional["CgroupV1"], pipes: Optional["_Pipes"],
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
            assert pipes is not None
            cmd = self._bwrap_argv(job, pipes) + _drop_privileges() + cmd
        if cgroup is None:
            cmd = _rlimit_prefix(job.resources, job.disk_bytes) + cmd
        if cgroup is not None:
            # join the cgroups before exec (as harness's own user: the agent can never write them), so every
            # descendant is counted and killable
            joins = " && ".join(f"echo $$ > {shlex.quote(str(p))}" for p in cgroup.procs_files)
            cmd = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sandbox", *cmd]
        return cmd, env

    def _bwrap_argv(self, job: SandboxJob, pipes: "_Pipes") -> list[str]:
        a = ["bwrap", "--die-with-parent", "--new-session", *_unshare_flags(),
             "--json-status-fd", str(pipes.status_w), "--block-fd", str(pipes.block_r)]
        for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            t = Path("/") / top
            if t.is_symlink():
                a += ["--symlink", os.readlink(t), str(t)]
            elif t.is_dir():
                a += ["--ro-bind", str(t), str(t)]
        a += _traversable_parents("/etc/passwd", f"{SANDBOX_HARNESS}/harness")
        for name in ETC_FILES:
            a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        if job.network:
            resolv = job.attempt_dir / ".resolv.conf"
            resolv.write_text(f"nameserver {SLIRP_DNS}\n")
            a += ["--ro-bind", str(resolv), "/etc/resolv.conf"]
        disk = str(job.disk_bytes)
        # the writable dirs live on size-capped tmpfs inside the sandbox (copied out safely at the end);
        # the host's attempt dirs are never mounted, so nothing the agent makes there is seen by the host as is
        a += ["--proc", "/proc", "--dev", "/dev",
              "--perms", "1777", "--size", str(int(job.resources.shm_gb * 1024**3)), "--tmpfs", "/dev/shm", "--perms", "1777", "--size", disk, "--tmpfs", "/tmp",
              "--perms", "0755", "--size", disk, "--tmpfs", "/home"]
        for d in (SUBMISSION, CODE, LOGS):
            a += ["--perms", "0777", "--dir", d]
        for p in _python_roots():  # after the tmpfs mounts: a venv under /tmp or /home needs its parents made there
            a += _traversable_parents(p) + ["--ro-bind", p, p]
        a += ["--ro-bind", str(HARNESS_PKG), f"{SANDBOX_HARNESS}/harness"]
        for sub in HIDDEN_HARNESS_DIRS:
            a += ["--tmpfs", f"{SANDBOX_HARNESS}/harness/{sub}"]
        if any(str(HARNESS_PKG).startswith(r + os.sep) for r in _python_roots()):  # installed: site-packages is bound too
            a += [arg for sub in HIDDEN_HARNESS_DIRS for arg in ("--tmpfs", str(HARNESS_PKG / sub))]
        for p in _hidden_package_dirs():
            a += ["--tmpfs", p]
        a += ["--ro-bind", str(job.data_dir), DATA, "--ro-bind", str(job.agent_dir), AGENT]
        for b in job.binds:
            a += _traversable_parents(b.target) + ["--ro-bind" if b.read_only else "--bind", str(b.source), b.target]
        a += ["--chdir", AGENT, "--hostname", "sandbox", "--"]
        return a

    # -------------------------------------------------------------- running it

    def _supervise(self, job: SandboxJob, argv: list[str], env: dict[str, str], isolation: Isolation,
                   cgroup: Optional["CgroupV1"], cancel: Optional[threading.Event], pipes: Optional["_Pipes"],
                   copied: dict[str, object]) -> SandboxResult:
        job.logs_dir.mkdir(parents=True, exist_ok=True)
        log = CappedLog(job.log_path)
        out_r, out_w = os.pipe()
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, env=env,
                cwd=str(job.agent_dir), start_new_session=True, close_fds=True,
                pass_fds=pipes.child_fds if pipes else (),
            )
        finally:
            os.close(out_w)
        pump = threading.Thread(target=log.pump, args=(out_r,), daemon=True)
        pump.start()
        waiter = _Waiter(proc)
        inside: Optional[_Inside] = None
        if pipes is not None:
            pipes.close_child_ends()
            inside = _Inside.attach(proc, pipes, job)
            copied["net"] = inside.net_error or ("slirp4netns" if job.network else "none")
        why = None
        try:
            if inside is None or inside.home is not None:
                why = wait_for_end(waiter.done, t0 + job.time_limit_s, cancel)
        except BaseException:  # ray.cancel's KeyboardInterrupt in this thread: end the tree on the way out
            _kill_tree(proc.pid, cgroup)
            if inside is not None:
                inside.close()
            raise
        if why or (inside is not None and inside.home is None):
            _kill_tree(proc.pid, cgroup)
            waiter.done.wait(10)
        seconds = time.monotonic() - t0
        _kill_tree(proc.pid, cgroup)  # stragglers that left the process group
        pump.join(10)
        os.close(out_r)
        log.close()
        if why:
            with open(job.log_path, "ab") as f:
                f.write(f"\n[harness] {why} after {seconds:.1f}s (limit {job.time_limit_s:g}s): process tree killed\n".encode())
        disk_full = None
        failed_setup = inside is not None and inside.home is None
        if inside is not None:
            disk_full = inside.full_dir()
            copied["copied_out"] = inside.copy_out(job)
            inside.close()
        exit_code = waiter.exit_code
        peak = cgroup.peak_memory_mb() if cgroup else waiter.maxrss_mb
        if failed_setup:
            return SandboxResult(status="infra_error", isolation=isolation, exit_code=exit_code, agent_seconds=seconds,
                                 error="bubblewrap failed to set up the sandbox: " + ((inside.net_error if inside else None) or log_tail(job.log_path, 300)))
        tail = log_tail(job.log_path, 2000)
        status: AttemptStatus
        if why:
            status = "timeout" if why == "timeout" else "cancelled"
        elif cgroup is not None and cgroup.oom_killed():
            status = "oom"
        elif exit_code == 0:
            status = "succeeded"
        elif cgroup is None and any(m in tail for m in _OOM_MARKERS):
            status = "oom"
        else:
            status = "agent_failed"
        error = None
        if status == "oom":
            error = f"memory limit of {job.resources.memory_gb:g} GB exceeded"
        elif status == "agent_failed" and (disk_full or ENOSPC in tail):
            error = (f"agent exited with code {exit_code} after filling its disk: the limit of "
                     f"{job.resources.disk_gb:g} GB (resources.disk_gb) was reached in {disk_full or 'a writable dir'}")
        elif status == "agent_failed":
            error = f"agent exited with code {exit_code}"
        elif status == "timeout":
            error = f"time limit of {job.time_limit_s:g}s exceeded"
        return SandboxResult(status=status, exit_code=exit_code, isolation=isolation, agent_seconds=seconds,
                             peak_memory_mb=peak, error=error)


class _Pipes:
    """bwrap's JSON status (child pid) and the block fd that holds the agent back until the host is ready."""

    def __init__(self) -> None:
        self.status_r, self.status_w = os.pipe()
        self.block_r, self.block_w = os.pipe()
        self._open = {self.status_r, self.status_w, self.block_r, self.block_w}

    @property
    def child_fds(self) -> tuple[int, int]:
        return self.status_w, self.block_r

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def close_child_ends(self) -> None:
        self._close(self.status_w)
        self._close(self.block_r)

    def release(self) -> None:
        """Let the agent start."""
        if self.block_w in self._open:
            try:
                os.write(self.block_w, b"go")
            except OSError:
                pass
            self._close(self.block_w)

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)


class _Inside:
    """The host's handles on a running sandbox: directory fds on its /home and /tmp tmpfs, taken
    before the agent starts. They outlive the sandbox's processes, so what the agent wrote is
    copied out after every ending (timeout and cancel too), with the rules of harness.safe_files."""

    def __init__(self) -> None:
        self.home: Optional[int] = None
        self.tmp: Optional[int] = None
        self.net_error: Optional[str] = None
        self.slirp: Optional[subprocess.Popen[bytes]] = None

    @classmethod
    def attach(cls, proc: subprocess.Popen[bytes], pipes: _Pipes, job: SandboxJob) -> "_Inside":
        self = cls()
        try:
            pid = _child_pid(pipes.status_r, 30.0)
            if pid is None or not _wait_for_pivot(pid, proc, 30.0):
                return self
            self.home = os.open(_root_of(pid) / "home", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.tmp = os.open(_root_of(pid) / "tmp", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            seed_writable(job, _root_of(pid) / "home")
            copy_inputs(job, _root_of(pid) / "home")  # at INSTRUCTIONS and VALIDATE, from no store path
            if job.network:
                self.net_error = self._start_network(pid)
                if self.net_error:
                    self.close()
        except OSError:
            self.close()
        finally:
            if self.home is not None:
                pipes.release()
        return self

    def _start_network(self, pid: int) -> Optional[str]:
        """Outbound network through slirp4netns in the sandbox's own namespace; the host's loopback is unreachable."""
        ready_r, ready_w = os.pipe()
        try:
            self.slirp = subprocess.Popen(
                [str(shutil.which("slirp4netns")), "--configure", "--mtu=65520", "--disable-host-loopback",
                 f"--ready-fd={ready_w}", str(pid), "tap0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(ready_w,),
                start_new_session=True)
            os.close(ready_w)
            ready_w = -1
            r, _, _ = select.select([ready_r], [], [], 10)
            if r and os.read(ready_r, 1) == b"1":
                return None
            return "slirp4netns did not bring the sandbox's network up"
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)

    def full_dir(self) -> Optional[str]:
        """/home or /tmp when it has (almost) no space left, else None."""
        for name, fd in (("/home", self.home), ("/tmp", self.tmp)):
            if fd is None:
                continue
            try:
                st = os.fstatvfs(fd)
            except OSError:
                continue
            if st.f_bavail * st.f_frsize < FULL_BYTES:
                return name
        return None

    def copy_out(self, job: SandboxJob) -> dict[str, object]:
        """submission/, code/ and logs/ to the attempt's host dirs; returns what was copied and refused."""
        return {} if self.home is None else copy_back(self.home, job)

    def close(self) -> None:
        for fd in (self.home, self.tmp):
            if fd is not None:
                os.close(fd)
        self.home = self.tmp = None
        if self.slirp is not None:
            if self.slirp.poll() is None:
                self.slirp.kill()
            self.slirp.wait()
            self.slirp = None


def _child_pid(status_r: int, timeout: float) -> Optional[int]:
    """The sandbox's pid from bwrap's JSON status (its first line), or None when bwrap gave up first."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        r, _, _ = select.select([status_r], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(status_r, 4096) if r else b""
        if not chunk:
            return None
        buf += chunk
    try:
        return int(json.loads(buf.split(b"\n", 1)[0])["child-pid"])
    except (ValueError, KeyError):
        return None


def _root_of(pid: int) -> Path:
    """The kernel's view of process `pid`'s root directory (procfs), whatever its mounts."""
    return Path("/proc") / str(pid) / "root"


def _wait_for_pivot(pid: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the sandbox's root is its final one (bwrap's intermediate root has no /home/logs; the final
    one has it once everything is mounted, and then bwrap waits on the block fd). Before bwrap's first pivot
    the child's root is still ours, which may have a /home/logs of its own (a container image's): not it."""
    own = os.stat("/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            root = os.stat(_root_of(pid))
            if (root.st_dev, root.st_ino) != (own.st_dev, own.st_ino) and (_root_of(pid) / LOGS.lstrip("/")).is_dir():
                return True
        except OSError:
            pass
        if proc.poll() is not None or not os.path.exists(f"/proc/{pid}"):
            return False
        time.sleep(0.0005)
    return False


def _unshare_flags() -> list[str]:
    """Every namespace but the user namespace when harness is root (the agent then drops to AGENT_UID);
    as another user, a user namespace too, in which no further user namespace may be made."""
    flags = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if os.getuid() != 0:
        flags += ["--unshare-user", "--disable-userns"]
    return flags


def _drop_privileges() -> list[str]:
    """As root: become AGENT_UID with no capabilities at all (bounding set cleared) and no_new_privs, so
    nothing in the sandbox can mount, unmount, remount or change a limit. Others are unprivileged already."""
    if os.getuid() != 0:
        return []
    return [str(shutil.which("setpriv") or "/usr/bin/setpriv"), f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


class _Waiter:
    """Reaps the child in a thread with wait4, so completion wakes the supervisor at
    once (no polling delay) and the child's peak RSS comes back with it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
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


def _rlimit_prefix(res: Resources, disk_bytes: int) -> list[str]:
    prlimit = shutil.which("prlimit")
    if not prlimit:
        return []
    mem = int(res.memory_gb * 1024**3)
    return [prlimit, f"--data={mem}", f"--nproc={res.pids * 16}", f"--fsize={disk_bytes}", "--"]


def _traversable_parents(*targets: str) -> list[str]:
    """bwrap arguments that make every missing parent directory of the mount points `targets`
    (absolute paths inside the sandbox) mode 0755, shallowest first. bwrap makes them 0700 when root
    runs it, and the agent's uid (AGENT_UID) could then not reach what is mounted beneath. Must come
    after any tmpfs mounted above the targets (such a tmpfs hides directories made before it);
    parents that exist already are left as they are."""
    parents = {str(q) for t in targets for q in PurePosixPath(t).parents if str(q) != "/"}
    return [arg for d in sorted(parents, key=lambda x: (x.count("/"), x)) for arg in ("--perms", "0755", "--dir", d)]


@functools.lru_cache(maxsize=1)
def _python_roots() -> tuple[str, ...]:
    """The interpreter's install trees, read-only inside: a venv, its base interpreter's prefix
    (sys.base_prefix) and every site-packages the venv reads (the base's too in a
    `--system-site-packages` venv), as real paths, outermost only."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.realpath(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))))
    for p in [*sys.path, *site.getsitepackages()]:
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


def bwrap_probe_argv() -> list[str]:
    """The probe bwrap_usable runs: the attempts' namespaces, /proc and /dev, then (as root) the drop to
    AGENT_UID, so a host or container where any of that fails runs no attempt in bwrap."""
    return [str(shutil.which("bwrap") or "bwrap"), "--ro-bind", "/", "/", *_unshare_flags(), "--proc", "/proc",
            "--dev", "/dev", "--die-with-parent", *_drop_privileges(), "true"]


@functools.lru_cache(maxsize=1)
def bwrap_usable() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    if os.getuid() == 0 and not shutil.which("setpriv"):
        return False  # root needs setpriv (util-linux) to drop the agent's privileges
    probe = subprocess.run(bwrap_probe_argv(), capture_output=True, timeout=30)
    return probe.returncode == 0


SLIRP_DNS = "10.0.2.3"


def network_refusal() -> Optional[str]:
    """None when the local sandbox can give an agent an isolated outbound network, else why not."""
    if not shutil.which("slirp4netns"):
        return ("the agent has network access (granted by --allow-network) but slirp4netns is not installed, and the "
                "local sandbox never shares the host's network: apt-get install -y slirp4netns")
    return None


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
    """One attempt's memory, cpu and pids cgroups, made and written by the host side only: the
    sandbox has no /sys and its own cgroup namespace, so the agent never sees them as writable."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, name: str, res: Resources) -> "CgroupV1":
        # top level, not under a shared parent: in cgroup v1 a parent group's cpu.shares would
        # make all attempts together weigh as much as one process against the rest of the machine;
        # the creator's pid in the name lets a later sandbox remove what a killed driver left
        dirs = {c: CGROUP_ROOT / c / f"{_CGROUP_PREFIX}{os.getpid()}-{name}" for c in CONTROLLERS}
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
        """Every process in the group and in any group beneath it."""
        out: list[int] = []
        for root, _, _ in os.walk(self.dirs["pids"]):
            try:
                out += [int(x) for x in (Path(root) / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                continue
        return out

    def kill_all(self) -> None:
        """SIGKILL every process in the group until none is left (on a loaded machine a killed tree
        can take seconds to leave; the group cannot be removed before)."""
        deadline = time.monotonic() + GROUP_EXIT_S
        while time.monotonic() < deadline:
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
        """Kill what is left and remove the groups, children first."""
        self.kill_all()
        for d in self.dirs.values():
            _rmdir_tree(d)


_CGROUP_PREFIX = "harness-p"
#: how long a cgroup's killed processes get to leave it, and the emptied group to be removable (EBUSY)
GROUP_EXIT_S = 10.0


def _rmdir_tree(d: Path) -> None:
    if not d.is_dir():
        return
    deadline = time.monotonic() + GROUP_EXIT_S
    for root, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):  # deepest first
        while True:
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)


def collect_leftover_cgroups() -> list[str]:
    """Remove attempt cgroups whose creating process is gone (a killed driver or worker). Returns their names."""
    removed = []
    for c in CONTROLLERS:
        base = CGROUP_ROOT / c
        try:
            names = [n for n in os.listdir(base) if n.startswith(_CGROUP_PREFIX)]
        except OSError:
            continue
        for name in names:
            pid = name[len(_CGROUP_PREFIX):].split("-", 1)[0]
            if not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            group = CgroupV1({"pids": base / name})  # pids() walks the "pids" entry, whatever the controller
            group.kill_all()
            _rmdir_tree(base / name)
            removed.append(f"{c}/{name}")
    return removed


_collected = threading.Event()


def _collect_leftover_cgroups_once() -> None:
    if not _collected.is_set():
        _collected.set()
        collect_leftover_cgroups()


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass
