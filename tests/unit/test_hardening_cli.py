"""Issue 18, the command line: store errors are one line, signals and closed pipes end quietly, outputs respect
the umask while the store is private, and the Markdown report escapes an apostrophe once."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.fileio import atomic_write_text
from harness.data.runs import load_run
from harness.report.markdown import esc
from harness.storage import ledger
from harness.storage.store import Store
from tests.conftest import write_suite
from tests.unit.runfixtures import build_run, demo_pair
from tests.unit.test_engine import KILL_TASK, _count_records
from tests.unit.test_hardening_suites import one_line_error

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "harness.cli"]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return demo_pair(tmp_path / "runs", n=20, cand_responses=[f"candidate answer {i}" for i in range(20)])


# ---- 8. store errors ----------------------------------------------------------------------------------------

def _store_with_baseline(path: Path, run: Path) -> Path:
    loaded = load_run(run)
    store = Store(path)
    ledger.save_baseline(store.conn, "approved", "r1", loaded.results, loaded.samples)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def test_a_damaged_store_names_the_file_and_how_to_recover(pair: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    path = _store_with_baseline(tmp_path / "store.sqlite", pair[0])
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):  # break every b-tree page header after the schema page
        data[page * 4096:page * 4096 + 12] = b"\x0d" + b"\xff" * 11
    path.write_bytes(bytes(data))
    code = main(["compare", "approved", str(pair[1]), "--store", str(path), "--resamples", "20"])
    one_line_error(code, capsys.readouterr().err, str(path), "malformed", ".recover", "move")


def test_a_store_whose_text_is_garbled_is_one_short_line(pair: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    path = _store_with_baseline(tmp_path / "store.sqlite", pair[0])
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):  # garble the stored text, not the page structure
        data[page * 4096 + 200:page * 4096 + 700] = b"\xff" * 500
    path.write_bytes(bytes(data))
    code = main(["compare", "approved", str(pair[1]), "--store", str(path), "--resamples", "20"])
    line = one_line_error(code, capsys.readouterr().err, str(path))
    assert len(line.replace(str(path), "STORE")) < 500  # the path is named twice; its length varies


def test_store_under_a_regular_file(pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    code = main(["compare", "approved", str(pair[1]), "--store", str(blocker / "store.sqlite")])
    one_line_error(code, capsys.readouterr().err, "not-a-dir", "--store")
    code = main(["review", "summary", "--store", str(blocker / "deeper" / "store.sqlite")])
    one_line_error(code, capsys.readouterr().err, "not-a-dir")


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions hold (root ignores them unless it drops CAP_DAC_*)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only file cannot be made read-only")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_read_only_store_in_a_writable_folder(pair: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    path.chmod(0o444)
    proc = subprocess.run([*_without_root_powers(), *CLI, "review", str(pair[0]), str(pair[1]), "--port", "0",
                           "--store", str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    one_line_error(proc.returncode, proc.stderr, str(path), "readonly", "writable")


def test_the_store_is_private_and_outputs_follow_the_umask(pair: tuple[Path, Path], tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "new" / "store.sqlite")
        ledger.save_baseline(store.conn, "x", "r", {}, [])
        assert (tmp_path / "new" / "store.sqlite").stat().st_mode & 0o777 == 0o600
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "new").iterdir()), \
            {p.name: oct(p.stat().st_mode) for p in (tmp_path / "new").iterdir()}  # -wal and -shm too
        store.close()
        assert main(["report", str(pair[0]), str(pair[1]), "--md", str(tmp_path / "r.md"),
                     "--html", str(tmp_path / "r.html")]) == 0
        assert (tmp_path / "r.md").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        atomic_write_text(tmp_path / "results.json", "{}")
        assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o640
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        os.umask(old)


# ---- 10. signals and pipes ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_during_eval_says_what_ctrl_c_says(tiny_model: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", KILL_TASK, {"data/rows.jsonl": [{"n": str(i)} for i in range(200)]})
    store = tmp_path / "store.sqlite"
    proc = subprocess.Popen([*CLI, "eval", "-q", "-m", str(tiny_model), "-s", str(suite), "--batch-size", "2",
                             "--store", str(store), "--out", str(tmp_path / "out")], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _count_records(store) < 4:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "tunegate: stopped (finished samples are saved; rerun with --resume)"
    assert "Traceback" not in err and not (tmp_path / "out" / "results.json").exists()


def test_a_closed_pipe_ends_compare_quietly(pair: tuple[Path, Path]) -> None:
    proc = subprocess.Popen([*CLI, "compare", str(pair[0]), str(pair[1]), "--resamples", "20"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before tunegate prints a line, as after `| head` has had enough
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 141 and "Traceback" not in err and "BrokenPipe" not in err and err == "", err


def test_compare_into_head(pair: tuple[Path, Path]) -> None:
    cmd = " ".join([*CLI, "compare", str(pair[0]), str(pair[1]), "--resamples", "20"]) + " | head -n 1"
    proc = subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_review_server_is_not_an_interrupted_eval(pair: tuple[Path, Path], tmp_path: Path,
                                                               sig: signal.Signals) -> None:
    proc = subprocess.Popen([*CLI, "review", str(pair[0]), str(pair[1]), "--port", "0", "--store",
                             str(tmp_path / "store.sqlite")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    url = ""
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        url = (re.search(r"open (http://\S+)", line) or [""])[0]
    assert url, proc.stderr.read() if proc.stderr else ""
    time.sleep(0.5)  # uvicorn installs its signal handlers as it starts serving
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "review server stopped" in err and "--resume" not in err and "Traceback" not in err, err


# ---- 11. the Markdown report escapes an apostrophe once ---------------------------------------------------

def test_markdown_escapes_an_apostrophe_once(tmp_path: Path) -> None:
    assert esc("it's #1") == "it&#x27;s &#35;1"
    assert "&&" not in esc("<a href='x'>O'Brien & co</a>")
    scores = {("medical", "qa"): {"acc": [1.0, 0.0, 1.0, 0.0]}}
    base = build_run(tmp_path / "b", scores=scores)
    cand = build_run(tmp_path / "c", scores={("medical", "qa"): {"acc": [0.0, 1.0, 1.0, 0.0]}}, adapter="bob's-lora",
                     responses={("medical", "qa"): ["it's fine", "don't know"]})
    assert main(["report", str(base), str(cand), "--md", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "bob&#x27;s-lora" in text and "it&#x27;s fine" in text and "&&#35;" not in text
    json.loads((base / "results.json").read_text())  # the fixture itself untouched
