"""Isolated execution of untrusted, model-written code.

One `Sandbox` runs one program in one language under declared `Limits` and returns an `ExecResult`.
Isolation is layered, and nothing here relies on the program behaving:

- a fresh subprocess in a new session, stdin closed, a scrubbed environment, a fresh temporary
  directory removed afterwards;
- network off and a private pid namespace, through bubblewrap (preferred) or `unshare`;
- as root, the program runs under a throw-away unprivileged uid (`setpriv`), so that RLIMIT_NPROC holds;
- rlimits (`prlimit`) set before the interpreter is exec'd;
- a wall-clock deadline that kills the whole process group, then a check that no process is left;
- stdout and stderr read without blocking and capped.

The backends differ only in the command line they build (`_Backend.wrap`), so a container or gVisor
backend is one more subclass.
"""

from __future__ import annotations

import os
import random
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from harness.core.api import UserError

Status = Literal["passed", "failed", "timeout", "limit_exceeded", "error"]
Isolation = Literal["bwrap", "unshare", "none"]

BWRAP = "/usr/bin/bwrap"
UNSHARE = "/usr/bin/unshare"
SETPRIV = "/usr/bin/setpriv"
PRLIMIT = "/usr/bin/prlimit"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
PY_MOUNT = "/opt/py"  # neutral path for the Python prefix (this machine's lives under 0700 /root)
SRC_MOUNT = "/work"  # read-only view of the host work directory holding the program


@dataclass
class Limits:
    """Resource limits for one execution; a suite may declare its own values."""

    memory_mb: int = 512  # RLIMIT_AS, plus the runner's `extra_as_mb`
    cpu_seconds: int = 10  # RLIMIT_CPU
    wall_seconds: float = 20.0  # killpg(SIGKILL) after this
    fsize_mb: int = 16  # RLIMIT_FSIZE
    nofile: int = 64  # RLIMIT_NOFILE
    nproc: int = 64  # RLIMIT_NPROC (threads count too: node starts about a dozen)
    output_bytes: int = 1 << 20  # cap per stream; more kills the program
    tmpfs_mb: int = 64  # size of the private /tmp (bwrap), so many small files cannot fill RAM


@dataclass
class ExecResult:
    """What one execution did."""

    status: Status
    reason: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_seconds: float
    truncated: bool
    isolation: str = "none"


@dataclass(frozen=True)
class Runner:
    """One language: how its program file is named and run, and how its failures read."""

    language: str
    filename: str
    argv: tuple[str, ...]  # "{python}" and "{file}" and "{memory_mb}" are filled in
    extra_as_mb: int = 0  # address space the runtime reserves beyond the program's own memory
    memory_markers: tuple[str, ...] = ()
    process_markers: tuple[str, ...] = ()
    reason_pattern: str = ""  # regex picking the failure line from stderr; default: the last line


RUNNERS: dict[str, Runner] = {r.language: r for r in (
    Runner("python", "main.py", ("{python}", "-I", "-B", "{file}"),
           memory_markers=("MemoryError",),
           process_markers=("BlockingIOError", "Resource temporarily unavailable")),
    # node reserves about 1 GiB of address space before running a line; its heap is capped instead.
    Runner("javascript", "main.js", ("/usr/bin/node", "--max-old-space-size={memory_mb}", "{file}"),
           extra_as_mb=1536,
           memory_markers=("heap out of memory", "Array buffer allocation failed",
                           "Fatal process out of memory", "Invalid array length"),
           process_markers=("EAGAIN", "Resource temporarily unavailable"),
           reason_pattern=r"^(Uncaught )?\w*(Error|Exception)\b.*"),
)}

# Signals the kernel sends for rlimits, and what they mean.
_SIGNAL_REASONS = {signal.SIGXCPU: "CPU time limit", signal.SIGXFSZ: "file size limit",
                   signal.SIGKILL: "killed (CPU hard limit or out of memory)"}
_TOOL_PREFIXES = ("bwrap: ", "unshare: ", "setpriv: ", "prlimit: ", "mount: ", "/bin/sh: ")
_STDERR_REASONS = (("File too large", "file size limit"), ("Too many open files", "open files limit"),
                   ("No space left on device", "temporary space limit"))


# ---------------------------------------------------------------- detection


def _probe(argv: Sequence[str]) -> bool:
    try:
        return subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _bwrap_works() -> bool:
    return os.path.exists(BWRAP) and _probe(
        [BWRAP, "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "--unshare-net", "--unshare-pid", "--die-with-parent",
         "--", "/usr/bin/true"])


def _unshare_works() -> bool:
    root_flag = [] if os.geteuid() == 0 else ["-r"]
    return os.path.exists(UNSHARE) and _probe([UNSHARE, *root_flag, "-n", "-p", "-f", "--kill-child",
                                               "/usr/bin/true"])


@lru_cache(maxsize=1)
def available_isolations() -> tuple[Isolation, ...]:
    """Every network-isolating level that really runs on this host, strongest first."""
    checks: tuple[tuple[Isolation, Callable[[], bool]], ...] = (("bwrap", _bwrap_works),
                                                                ("unshare", _unshare_works))
    return tuple(level for level, works in checks if works())


def detect_isolation() -> Isolation:
    """The strongest network isolation this host offers, checked by really running it."""
    levels = available_isolations()
    return levels[0] if levels else "none"


def get_sandbox(allow_unisolated: bool = False) -> Sandbox:
    """The sandbox for this host; refuses to run without network isolation unless allowed."""
    level = detect_isolation()
    if level == "none" and not allow_unisolated:
        raise UserError("no network isolation available (install bubblewrap, or util-linux unshare); "
                        "pass --allow-unisolated to run model-written code without it")
    return Sandbox(level)


# ---------------------------------------------------------------- uids


class _UidPool:
    """Throw-away uids, one per running program.

    Each execution gets its own uid so that RLIMIT_NPROC counts only its own processes (a fork bomb
    in one sample cannot starve a concurrent one) and so that leftovers can be found by uid.
    """

    def __init__(self, size: int = 4096) -> None:
        # A high range that no distribution allocates; offset by pid so parallel harnesses differ.
        self.base, self.size = 1_900_000_000 + (os.getpid() % 50_000) * size, size
        self.free = list(range(self.base, self.base + size))
        random.shuffle(self.free)
        self.lock = threading.Lock()

    def take(self) -> int:
        with self.lock:
            return self.free.pop()

    def give(self, uid: int) -> None:
        with self.lock:
            self.free.append(uid)


_UIDS = _UidPool()


def live_processes(uid: int | None = None, pgid: int | None = None) -> list[int]:
    """Pids, not zombies, owned by `uid` or in process group `pgid`, read from /proc."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            owner = os.stat(f"/proc/{name}").st_uid
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if state not in "ZX" and (owner == uid or group == pgid):
            pids.append(int(name))
    return pids


def _python_interpreter() -> tuple[str, str]:
    """(prefix, interpreter path relative to it) of the *base* Python, not the venv."""
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    rel = os.path.relpath(exe, prefix)
    if rel.startswith(".."):
        rel = f"bin/python{sys.version_info.major}.{sys.version_info.minor}"
    return prefix, rel


# ---------------------------------------------------------------- backends


@dataclass
class _Job:
    """Everything a backend needs to build one command line."""

    runner: Runner
    limits: Limits
    workdir: str  # host directory holding the program, read-only inside
    uid: int | None  # None: not root, run as ourselves
    py_prefix: str = field(default_factory=lambda: _python_interpreter()[0])


def _limit_argv(job: _Job) -> list[str]:
    lim, mb = job.limits, 1 << 20
    as_bytes = (lim.memory_mb + job.runner.extra_as_mb) * mb
    # Hard CPU limit one second above the soft one: SIGXCPU first, then SIGKILL if it is caught.
    return [PRLIMIT, f"--as={as_bytes}", f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 1}",
            f"--fsize={lim.fsize_mb * mb}", f"--nofile={lim.nofile}", f"--nproc={lim.nproc}",
            "--core=0", "--"]


def _drop_argv(job: _Job) -> list[str]:
    if job.uid is None:
        return []
    return [SETPRIV, f"--reuid={job.uid}", f"--regid={job.uid}", "--clear-groups", "--no-new-privs",
            "--bounding-set=-all", "--inh-caps=-all", "--"]


def _program_argv(job: _Job, py_root: str, src_root: str) -> list[str]:
    _, py_rel = _python_interpreter()
    values = {"python": f"{py_root}/{py_rel}", "file": f"{src_root}/{job.runner.filename}",
              "memory_mb": str(job.limits.memory_mb)}
    return [arg.format(**values) for arg in job.runner.argv]


class _Backend:
    isolation: Isolation = "none"

    def wrap(self, job: _Job) -> tuple[list[str], str]:
        """(argv, cwd) for the job; no isolation beyond uid and rlimits."""
        argv = _drop_argv(job) + _limit_argv(job) + _program_argv(job, job.py_prefix, job.workdir)
        return argv, job.workdir


class _BwrapBackend(_Backend):
    """bubblewrap run as root with no user namespace: only /usr, /lib*, /bin, /etc and Python visible."""

    isolation: Isolation = "bwrap"

    def wrap(self, job: _Job) -> tuple[list[str], str]:
        mounts = ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/lib", "/lib64", "/sbin"):
            if os.path.islink(top):  # merged /usr: keep the symlink, binding it would follow it
                mounts += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                mounts += ["--ro-bind", top, top]
        mounts += ["--ro-bind", "/etc", "/etc", "--perms", "0755", "--dir", "/opt",
                   "--ro-bind", job.py_prefix, PY_MOUNT,
                   "--perms", "1777", "--size", str(job.limits.tmpfs_mb << 20), "--tmpfs", "/tmp",
                   "--ro-bind", job.workdir, SRC_MOUNT, "--proc", "/proc", "--dev", "/dev"]
        flags = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session", "--clearenv", "--setenv", "PATH", SAFE_PATH, "--setenv", "HOME", "/tmp",
                 "--chdir", "/tmp"]
        if job.uid is None:
            flags.append("--unshare-user")
        argv = [BWRAP, *mounts, *flags, "--", *_drop_argv(job), *_limit_argv(job),
                *_program_argv(job, PY_MOUNT, SRC_MOUNT)]
        return argv, job.workdir


class _UnshareBackend(_Backend):
    """util-linux unshare: network, pid and (as root) mount namespaces; otherwise the host's files.

    As root, the private mount namespace gets size-capped tmpfs over the world-writable temp
    directories, and read-only binds of the program and of the Python prefix (the throw-away uid
    cannot traverse a 0700 /root). The rest of the host is visible, read with the uid's rights.
    """

    isolation: Isolation = "unshare"
    scratch = ("/tmp", "/var/tmp", "/dev/shm")
    flags = ("-n", "-p", "-f", "--kill-child", "--mount-proc", "--")

    def wrap(self, job: _Job) -> tuple[list[str], str]:
        if job.uid is None:
            inner = " ".join(shlex.quote(a) for a in _limit_argv(job) + _program_argv(job, job.py_prefix, job.workdir))
            return [UNSHARE, "-r", *self.flags, "/bin/sh", "-c", inner], job.workdir
        src, py = "/tmp/.sandbox/src", "/tmp/.sandbox/py"
        q = shlex.quote
        steps = [f"mount --bind {q(job.workdir)} /mnt"]  # park the work dir before /tmp is covered
        steps += [f"mount -t tmpfs -o size={job.limits.tmpfs_mb}m,mode=1777 tmpfs {d}"
                  for d in self.scratch if os.path.isdir(d)]
        steps += [f"mkdir -p {src} {py}", f"mount --move /mnt {src}", f"mount -o remount,bind,ro {src}",
                  f"mount --bind {q(job.py_prefix)} {py}", f"mount -o remount,bind,ro {py}", "cd /tmp"]
        inner = " ".join(q(a) for a in _drop_argv(job) + _limit_argv(job) + _program_argv(job, py, src))
        # No `exec`: the shell stays pid 1 of the namespace, so the program is an ordinary process
        # that rlimit signals can kill (signals to a namespace's init are ignored).
        script = " && ".join(steps) + f" && {inner}"
        return [UNSHARE, "-m", *self.flags, "/bin/sh", "-c", script], job.workdir


_BACKENDS: dict[str, type[_Backend]] = {"bwrap": _BwrapBackend, "unshare": _UnshareBackend,
                                        "none": _Backend}


# ---------------------------------------------------------------- running


@dataclass
class _Captured:
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflow: bool
    returncode: int | None


def _capture(proc: subprocess.Popen, limits: Limits) -> _Captured:
    """Read both pipes without blocking until EOF, the deadline or the output cap."""
    deadline = time.monotonic() + limits.wall_seconds
    assert proc.stdout is not None and proc.stderr is not None  # both are pipes (Popen above)
    bufs: dict[Any, bytearray] = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for pipe in bufs:
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe, selectors.EVENT_READ)
    timed_out = overflow = False
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = bufs[key.fileobj]
            buf += chunk
            if len(buf) > limits.output_bytes:
                overflow = True
        if overflow:
            break
    sel.close()
    if timed_out or overflow:
        _kill_group(proc)
    try:
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # pipes closed but process still running (closed its stdout)
        timed_out = True
        _kill_group(proc)
        rc = proc.wait()
    return _Captured(bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), timed_out, overflow, rc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL our whole process group; the pid namespace then takes everything inside with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap_leftovers(uid: int | None, pgid: int) -> int:
    """Kill whatever is left of the execution; returns how many processes survived 2 s of trying."""
    deadline = time.monotonic() + 2.0
    while True:
        left = live_processes(uid, pgid)
        if not left or time.monotonic() > deadline:
            return len(left)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)  # a dying pid namespace takes a moment to empty


def _classify(cap: _Captured, runner: Runner, limits: Limits, stderr: str) -> tuple[Status, str]:
    """Turn what happened into a status and a one-line reason."""
    rc = cap.returncode
    if stderr.startswith(_TOOL_PREFIXES) and rc in (1, 126, 127):  # the wrapper, not the program, failed
        return "error", stderr.strip().splitlines()[0]
    if cap.timed_out:
        return "timeout", f"wall-clock limit of {limits.wall_seconds:g} s"
    if cap.overflow:
        return "limit_exceeded", f"output limit of {limits.output_bytes} bytes"
    if rc == 0:
        return "passed", ""
    sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and rc > 128 else None)
    if sig in _SIGNAL_REASONS:
        return "limit_exceeded", _SIGNAL_REASONS[signal.Signals(sig)]
    if any(m in stderr for m in runner.memory_markers):
        return "limit_exceeded", f"memory limit of {limits.memory_mb} MB"
    if any(m in stderr for m in runner.process_markers):
        return "limit_exceeded", f"process limit of {limits.nproc}"
    for marker, reason in _STDERR_REASONS:
        if marker in stderr:
            return "limit_exceeded", reason
    return "failed", _failure_line(stderr, runner.reason_pattern) or f"exit status {rc}"


def _failure_line(text: str, pattern: str) -> str:
    """The line of stderr that names the failure: the last one matching `pattern`, else the last."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    matching = [ln for ln in lines if pattern and re.match(pattern, ln)]
    line = (matching or lines or [""])[-1]
    return line[:300]


class Sandbox:
    """Runs programs under one isolation level. Thread-safe; `run_many` uses a thread pool."""

    def __init__(self, isolation: Isolation = "bwrap") -> None:
        self.isolation: Isolation = isolation
        self._backend = _BACKENDS[isolation]()

    def run(self, language: str, program: str, limits: Limits | None = None) -> ExecResult:
        """Run `program` in `language` and report what it did. Never raises for the program's sake."""
        if language not in RUNNERS:
            raise UserError(f"no runner for language {language!r} (known: {', '.join(sorted(RUNNERS))})")
        limits, runner = limits or Limits(), RUNNERS[language]
        # As root, run under a throw-away uid (RLIMIT_NPROC is not enforced for root).
        uid = _UIDS.take() if os.geteuid() == 0 else None
        workdir = tempfile.mkdtemp(prefix="tunegate-sbx-")
        start = time.monotonic()
        try:
            return self._run_in(workdir, runner, program, limits, uid, start)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if uid is not None:
                _UIDS.give(uid)

    def _run_in(self, workdir: str, runner: Runner, program: str, limits: Limits, uid: int | None,
                start: float) -> ExecResult:
        os.chmod(workdir, 0o755)  # readable by the throw-away uid, writable by nobody but us
        path = os.path.join(workdir, runner.filename)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(program)
        os.chmod(path, 0o644)
        argv, cwd = self._backend.wrap(_Job(runner, limits, workdir, uid))
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env={"PATH": SAFE_PATH},
                                    start_new_session=True, close_fds=True)
        except OSError as exc:
            return ExecResult("error", f"could not start: {exc}", None, "", "", 0.0, False, self.isolation)
        with proc:
            cap = _capture(proc, limits)
        leftovers = _reap_leftovers(uid, proc.pid)
        out, err = (b.decode("utf-8", "replace") for b in (cap.stdout, cap.stderr))
        truncated = cap.overflow
        out, err = out[: limits.output_bytes], err[: limits.output_bytes]
        status, reason = _classify(cap, runner, limits, err)
        if leftovers:
            status, reason = "error", f"{leftovers} process(es) left over after kill"
        return ExecResult(status, reason, cap.returncode, out, err, time.monotonic() - start, truncated,
                          self.isolation)

    def run_many(self, jobs: Iterable[tuple[str, str]], limits: Limits | None = None,
                 workers: int | None = None) -> list[ExecResult]:
        """Run (language, program) jobs in parallel, at most one per core; results in input order."""
        jobs = list(jobs)
        cores = os.cpu_count() or 1
        n = max(1, min(workers or cores, cores, len(jobs) or 1))
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox") as pool:
            return list(pool.map(lambda job: self.run(job[0], job[1], limits), jobs))
