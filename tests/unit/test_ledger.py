"""The release ledger, the same suite on both stores: SQLite and a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.flows import release
from harness.storage import ledger
from harness.storage.store import Store
from tests.unit.runfixtures import build_run

ROOT = Path(__file__).resolve().parents[2]
GATE = """rules:
  - name: medical does not get worse
    suite: medical
    non_inferiority: 0.2
"""


def make_run(root: Path, name: str | None, right: int, n: int = 40, fp: str = "fp-medical") -> Path:
    scores = [1.0] * right + [0.0] * (n - right)
    return build_run(root / (name or "base"), adapter=name, suite_fingerprints={"medical": fp},
                     scores={("medical", "medqa"): {"acc": scores}})


def tg(*args: str) -> int:
    return main(list(args))


def err_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tunegate: error: "), err
    return err[0]


@pytest.fixture
def channel(store_ref: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, Path]:
    """Channel `approved` bound to GATE, release 1 = the base run; returns (gate file, runs folder)."""
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    runs = tmp_path / "runs"
    make_run(runs, None, 30)
    assert tg("channel", "create", "approved", "--gate", str(gate), "--release", str(runs / "base")) == 0
    capsys.readouterr()
    return gate, runs


def test_gate_records_and_promote_moves_the_pointer(channel: tuple[Path, Path], store_ref: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    gate, runs = channel
    cand = make_run(runs, "v2", 31)
    assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(cand)) == 0
    assert tg("promote", str(cand), "--to", "approved") == 0
    assert "release 2" in capsys.readouterr().out
    # the gate by name now reads release 2; release 1 is kept
    store = Store(store_ref)
    results, _ = ledger.channel_run(store.conn, "approved")  # type: ignore[misc]
    assert results["run_id"] == "run-v2"
    rows = store.conn.execute("SELECT number, run_id, forced, verdict_id FROM ledger_releases ORDER BY number").fetchall()
    store.close()
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [(1, "run-base", False), (2, "run-v2", False)]
    assert rows[1][3] is not None  # promoted on a recorded verdict
    assert tg("runs", "show", "run-v2") == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "approved release 2" in out and "fp-medical"[:12] in out
    assert tg("runs", "list", "--suite", "medical") == 0
    out = capsys.readouterr().out
    assert "run-v2" in out and "run-base" in out
    assert tg("channel", "list") == 0
    assert "approved             release 2    run-v2" in capsys.readouterr().out
    assert tg("runs", "list", "--suite", "legal") == 0 and "no runs" in capsys.readouterr().out
    assert tg("runs", "list", "--since", "2999-01-01") == 0 and "no runs" in capsys.readouterr().out


def test_promote_refuses_without_a_passing_verdict(channel: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gate, runs = channel
    never = make_run(runs, "never-gated", 31)
    assert tg("promote", str(never), "--to", "approved") == 2
    assert "no recorded verdict" in err_line(capsys)
    worse = make_run(runs, "worse", 5)
    assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(worse)) == 1
    capsys.readouterr()
    assert tg("promote", str(worse), "--to", "approved") == 2
    assert "FAIL, not PASS" in err_line(capsys)
    assert tg("promote", str(worse), "--to", "nope") == 2
    assert "no channel 'nope'" in err_line(capsys)
    assert tg("promote", "no-such-run-id", "--to", "approved") == 2
    assert "no run 'no-such-run-id'" in err_line(capsys)
    assert tg("promote", str(worse), "--to", "approved", "--force") == 2
    assert "--force needs --reason" in err_line(capsys)
    assert tg("promote", str(worse), "--to", "approved", "--force", "--reason", "hotfix for ticket 12") == 0
    capsys.readouterr()
    assert tg("runs", "show", "run-worse") == 0
    assert "forced: hotfix for ticket 12" in capsys.readouterr().out


def test_a_verdict_against_an_older_release_does_not_count(channel: tuple[Path, Path],
                                                           capsys: pytest.CaptureFixture) -> None:
    gate, runs = channel
    a, b = make_run(runs, "a", 31), make_run(runs, "b", 32)
    for cand in (a, b):
        assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(cand)) == 0
    assert tg("promote", str(a), "--to", "approved") == 0
    capsys.readouterr()
    assert tg("promote", str(b), "--to", "approved") == 2
    assert "not the current release" in err_line(capsys)


def test_history_table_sparkline_and_suite_change(channel: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    gate, runs = channel
    for i, (name, right, fp) in enumerate((("r2", 32, "fp-medical"), ("r3", 33, "fp-medical-v2"))):
        cand = make_run(runs, name, right, fp=fp)
        assert tg("promote", str(cand), "--to", "approved", "--force", "--reason", f"step {i}") == 0
    capsys.readouterr()
    assert tg("history", "--channel", "approved", "--metric", "medical/acc") == 0
    out = capsys.readouterr().out
    assert "over 3 releases" in out and "0.7500" in out and "0.8250" in out
    assert "◆ suite changed" in out and "●" in out and "├" in out
    assert any(ch in out for ch in "▁█")
    assert tg("history", "--channel", "approved", "--metric", "medical/nope") == 2
    assert "reports medical/nope" in err_line(capsys)
    assert tg("history", "--channel", "missing", "--metric", "medical/acc") == 2
    assert "no channel 'missing'" in err_line(capsys)


def test_save_baseline_appends_releases(store_ref: str, tmp_path: Path) -> None:
    from harness.data.runs import load_run

    runs = tmp_path / "runs"
    one, two = load_run(make_run(runs, None, 20)), load_run(make_run(runs, "v2", 25))
    store = Store(store_ref)
    ledger.save_baseline(store.conn, "nightly", "run-base", one.results, one.samples)
    ledger.save_baseline(store.conn, "nightly", "run-v2", two.results, two.samples)
    assert ledger.channel_run(store.conn, "nightly")[0]["run_id"] == "run-v2"  # type: ignore[index]
    assert ledger.channel_names(store.conn) == ["nightly"]
    numbers = store.conn.execute("SELECT number, run_id, reason FROM ledger_releases WHERE channel='nightly' "
                                 "ORDER BY number").fetchall()
    store.close()
    assert [tuple(r) for r in numbers] == [(1, "run-base", "eval --save-baseline"), (2, "run-v2", "eval --save-baseline")]


def test_an_unreachable_store_is_one_line(capsys: pytest.CaptureFixture) -> None:
    url = "postgresql://someone:secret@127.0.0.1:9/nothing"
    assert tg("runs", "list", "--store", url) == 2
    line = err_line(capsys)
    assert "cannot reach the store" in line and "secret" not in line and "***" in line
    for args in (["promote", "run-x", "--to", "approved"], ["history", "--channel", "a", "--metric", "s/m"]):
        assert tg(*args, "--store", url) == 2
        assert "cannot reach the store" in err_line(capsys)


def test_a_store_from_before_the_ledger_is_migrated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A saved baseline of the old schema becomes release 1 of a gate-less channel; the store's version is kept."""
    import sqlite3

    from harness.data.runs import load_run

    run = load_run(make_run(tmp_path / "runs", None, 30))
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE baselines (name TEXT PRIMARY KEY, run_id TEXT NOT NULL, created REAL NOT NULL, "
                     "results_json TEXT NOT NULL, samples_json TEXT NOT NULL);")
    db.execute("INSERT INTO baselines VALUES (?,?,?,?,?)",
               ("approved", "run-base", 1.0e9, json.dumps(run.results), json.dumps(run.samples)))
    db.commit()
    db.close()
    store = Store(path)
    assert ledger.channel_run(store.conn, "approved")[0]["run_id"] == "run-base"  # type: ignore[index]
    versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    store.conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    store.close()
    assert versions == [1, 2, 3]
    assert tg("runs", "show", "approved@1", "--store", str(path)) == 2
    assert "schema version 99, newer than this tunegate knows" in err_line(capsys)


def test_two_processes_promote_at_once_and_exactly_one_wins(channel: tuple[Path, Path], store_ref: str) -> None:
    gate, runs = channel
    a, b = make_run(runs, "a", 31), make_run(runs, "b", 32)
    for cand in (a, b):
        assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(cand)) == 0
    # Each process holds its transaction open for a second between its checks and its update, so both have read
    # release 1 before either moves the channel: the race is certain, not left to timing.
    slow = ("import sys, time\nfrom harness.storage import ledger\nmove = ledger._move\n"
            "def slow_move(*a, **k):\n    time.sleep(1.0)\n    return move(*a, **k)\n"
            "ledger._move = slow_move\nfrom harness.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", slow, "promote", run, "--to", "approved"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for run in ("run-a", "run-b")]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = next(err for (_, err), p in zip(outs, procs) if p.returncode == 2)
    assert loser.count("\n") == 1, loser
    if store_ref.startswith("postgresql"):  # both read release 1; the conditional update stops the second
        assert "moved to release 2 while this promote ran" in loser, loser
    else:  # SQLite: the second waits for the write lock, then finds no verdict against release 2
        assert "not the current release" in loser, loser
    store = Store(store_ref)
    rows = store.conn.execute("SELECT number FROM ledger_releases WHERE channel='approved'").fetchall()
    store.close()
    assert sorted(r[0] for r in rows) == [1, 2]


def _consistent(store_ref: str) -> tuple[int, int]:
    """The channel's pointer agrees with its last release row; returns (releases, runs in the ledger)."""
    store = Store(store_ref)
    number, run_id = store.conn.execute("SELECT number, run_id FROM ledger_channels WHERE name='loop'").fetchone()
    rows = store.conn.execute("SELECT number, run_id FROM ledger_releases WHERE channel='loop' ORDER BY number").fetchall()
    n_runs = store.conn.execute("SELECT count(*) FROM ledger_runs").fetchone()[0]
    store.close()
    assert [r[0] for r in rows] == list(range(1, number + 1))
    assert rows[-1][1] == run_id
    return int(number), int(n_runs)


def test_sigkill_mid_write_leaves_the_ledger_before_or_after(store_ref: str, tmp_path: Path) -> None:
    """Kill a process that writes releases in a loop, by eval --save-baseline's write (run + pointer + release row
    in one transaction) and by promote's, at several moments: the channel's pointer and its releases always agree,
    and every release's run is in the ledger."""
    script = ("import sys; from harness.storage.store import Store; from harness.data.runs import load_run\n"
              "from harness.storage import ledger; from harness.storage.ledger import promote\n"
              "run = load_run(sys.argv[1]); store = Store(sys.argv[2]); i = 0\n"
              "print('ready', flush=True)\n"
              "while True:\n"
              "    i += 1; run.results['run_id'] = f'r{i}-' + sys.argv[3]\n"
              "    ledger.save_baseline(store.conn, 'loop', run.results['run_id'], run.results, run.samples)\n"
              "    if i > 1:\n"  # and promote's write: back to the previous run, forced with a reason
              "        promote(store.conn, f'r{i - 1}-' + sys.argv[3], 'loop', force=True, reason='kill test')\n")
    run = make_run(tmp_path / "runs", None, 300, n=600)  # big enough that a write takes a while
    seen = 0
    for attempt, delay in enumerate((0.2, 0.45, 0.7)):
        proc = subprocess.Popen([sys.executable, "-c", script, str(run), store_ref, str(attempt)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        releases, _ = _consistent(store_ref)
        assert releases > seen  # it did write between kills
        seen = releases
    store = Store(store_ref)
    missing = store.conn.execute("SELECT count(*) FROM ledger_releases r WHERE NOT EXISTS (SELECT 1 FROM ledger_runs l "
                                 "WHERE l.run_id=r.run_id)").fetchone()[0]
    store.close()
    assert missing == 0


def test_export_import_between_backends(channel: tuple[Path, Path], store_ref: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture, request: pytest.FixtureRequest) -> None:
    gate, runs = channel
    cand = make_run(runs, "v2", 31)
    assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(cand)) == 0
    assert tg("promote", "run-v2", "--to", "approved") == 0
    dump = tmp_path / "export.jsonl"
    assert tg("store", "export", str(dump)) == 0
    # into the other kind of store
    if store_ref.startswith("postgresql"):
        other = str(tmp_path / "other.sqlite")
    else:
        from tests.pgserver import new_database

        other = new_database(request.getfixturevalue("postgres_url"))
    assert tg("store", "import", str(dump), "--store", other) == 0
    assert "2 ledger_releases" in capsys.readouterr().out
    assert tg("history", "--channel", "approved", "--metric", "medical/acc", "--store", other) == 0
    assert "over 2 releases" in capsys.readouterr().out
    assert tg("store", "import", str(dump), "--store", other) == 0  # again: nothing new, nothing doubled
    assert "0 ledger_releases" in capsys.readouterr().out
    # a diverged channel is refused, and nothing of the import is written
    assert tg("promote", "run-base", "--to", "approved", "--force", "--reason", "rollback", "--store", other) == 0
    assert tg("store", "import", str(dump), "--store", other) == 2
    assert "different releases" in err_line(capsys)
    head = json.loads(dump.read_text().splitlines()[0])
    assert head["format"] == "tunegate.store/1"


DRIFT_GATE = """rules:
  - name: no worse than the current release
    suite: medical
    non_inferiority: 0.1
  - name: no further than 3 points from the first release
    max_drift: {from: first, metric: medical/acc, margin: 0.03}
"""


def test_gate_with_a_drift_rule_reads_the_anchor_from_the_ledger(store_ref: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """Each step passes non-inferiority against the current release; the anchor (release 1) shows the drift."""
    gate = tmp_path / "drift.yaml"
    gate.write_text(DRIFT_GATE)
    runs = tmp_path / "runs"
    first, second, third = (make_run(runs, name, right, n=2000)
                             for name, right in ((None, 1500), ("r2", 1460), ("r3", 1420)))
    assert tg("channel", "create", "approved", "--gate", str(gate), "--release", str(first)) == 0
    assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(second)) == 0
    assert tg("promote", str(second), "--to", "approved") == 0
    capsys.readouterr()
    assert tg("gate", str(gate), "--baseline", "approved", "--candidate", str(third)) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "no further than 3 points" in out
    verdict = json.loads((third / "verdict.json").read_text())
    assert [r["verdict"] for r in verdict["rules"]] == ["PASS", "FAIL"] and verdict["rules"][1]["kind"] == "max_drift"
    assert tg("promote", str(third), "--to", "approved") == 2
    assert "FAIL, not PASS" in err_line(capsys)
    # an explicit anchor works without a channel: a release reference
    gate.write_text(DRIFT_GATE.replace("from: first", "from: approved@1"))
    assert tg("gate", str(gate), "--baseline", str(second), "--candidate", str(third)) == 1
    capsys.readouterr()
    gate.write_text(DRIFT_GATE)  # `from: first` with a run directory as baseline names no channel
    assert tg("gate", str(gate), "--baseline", str(second), "--candidate", str(third)) == 2
    assert "names a release of a channel" in err_line(capsys)


def test_the_conditional_update_refuses_a_stale_promote(channel: tuple[Path, Path], store_ref: str) -> None:
    """The compare-and-swap itself: a promote that read release 1 loses once another moved the channel on."""
    from harness.storage import ledger

    _, runs = channel
    store = Store(store_ref)
    release.run_ref(store.conn, str(make_run(runs, "late", 31)))
    stale = ledger.require_channel(store.conn, "approved")  # what the slower job read: release 1
    other = Store(store_ref)
    release.promote(other.conn, str(make_run(runs, "fast", 32)), "approved", force=True, reason="the faster job")
    other.close()
    with pytest.raises(ledger.UserError, match="moved to release 2 while this promote ran"):
        with store.conn.transaction() as db:
            ledger._move(db, stale, "run-late", verdict_id=None, forced=True, reason="too late")
    rows = store.conn.execute("SELECT number, run_id FROM ledger_releases ORDER BY number").fetchall()
    store.close()
    assert [tuple(r) for r in rows] == [(1, "run-base"), (2, "run-fast")]


def test_review_judgments_live_in_either_store(store_ref: str, tmp_path: Path,
                                               request: pytest.FixtureRequest) -> None:
    """The review app's queue and judgments on both databases: n reviewers per item, one judgment each."""
    import random

    from harness.review.export import export
    from harness.review.queue import build_queue
    from harness.storage.review import DuplicateJudgment, ReviewDB
    from tests.unit.test_review_queue import make_runs

    db = ReviewDB(store_ref)
    queue = build_queue(make_runs(tmp_path), reviewers_per_item=2, db=db)
    rng = random.Random(0)
    judged: dict[str, list[str]] = {}
    for who in ("ann", "bob", "cy"):
        while (found := db.next_for(queue.queue_id, who, rng)) is not None:
            item, _ = found
            judged.setdefault(item.item_id, []).append(who)
            db.add_judgment(item.item_id, who, choice="A", ratings=None, comment="fine")
    assert len(judged) == 5 and all(sorted(v) == ["ann", "bob"] for v in judged.values())
    with pytest.raises(DuplicateJudgment):
        db.add_judgment(next(iter(judged)), "ann", choice="B", ratings=None, comment=None)
    assert db.count_judgments() == 10 and db.progress(queue.queue_id, "ann")["reviewer_done"] == 5
    ids = [j["judgment_id"] for j in db.judgments()]
    db.close()
    assert ids == sorted(ids) and len(set(ids)) == 10
    assert export(tmp_path / "pref.jsonl", store_path=store_ref).line()
    assert len((tmp_path / "pref.jsonl").read_text().splitlines()) == 10  # one row per judgment
    # the judgments move to the other kind of store, and the next judgment there gets a fresh id
    assert tg("store", "export", str(tmp_path / "dump.jsonl")) == 0
    if store_ref.startswith("postgresql"):
        other = str(tmp_path / "other.sqlite")
    else:
        from tests.pgserver import new_database

        other = new_database(request.getfixturevalue("postgres_url"))
    assert tg("store", "import", str(tmp_path / "dump.jsonl"), "--store", other) == 0
    moved = ReviewDB(other)
    assert moved.count_judgments() == 10
    fresh = moved.db.execute("INSERT INTO review_judgments (item_id, reviewer, choice, order_json, created) "
                             "VALUES (?,?,?,?,?) RETURNING judgment_id", (next(iter(judged)), "dee", "tie", "[0, 1]",
                                                                          0.0)).fetchone()[0]
    assert fresh > max(ids)
    moved.close()


def _two_suites(root: Path, name: str | None, med: int, gen: int, n: int = 400) -> Path:
    return build_run(root / (name or "base"), adapter=name,
                     scores={("medical", "medqa"): {"acc": [1.0] * med + [0.0] * (n - med)},
                             ("general", "mmlu"): {"acc": [1.0] * gen + [0.0] * (n - gen)}})


def test_report_history_marks_forgetting_and_domain_gains(store_ref: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    runs = tmp_path / "runs"
    first = _two_suites(runs, None, 200, 300)
    assert tg("channel", "create", "approved", "--gate", str(gate), "--release", str(first)) == 0
    for name, med, gen in (("r2", 260, 250), ("r3", 262, 250)):
        assert tg("promote", str(_two_suites(runs, name, med, gen)), "--to", "approved", "--force",
                  "--reason", "test chain") == 0
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    assert tg("report", "--channel", "approved", "--md", str(md), "--html", str(page)) == 0
    text = md.read_text()
    assert "## History of approved" in text and "| 3 (r3) |" in text
    rows = [line for line in text.splitlines() if line.startswith("| 2 (r2)")]
    assert len(rows) == 1 and "▲ gain" in rows[0] and "▼ forgetting" in rows[0]
    assert "forgetting" not in next(line for line in text.splitlines() if line.startswith("| 3 (r3)"))
    body = page.read_text()
    assert '<section id="history">' in body and body.count('class="history-chart"') == 2
    assert 'class="mark-forgetting"' in body and 'class="mark-gain"' in body
    # A forced promotion says so, with the reason the ledger kept (issue 28).
    assert "- Release 2 (r2) was forced past its gate: test chain" in text
    assert '<li class="forced">Release 3 (r3) was forced past its gate: test chain</li>' in body


def test_cycle_stops_on_bad_input_and_on_contaminated_data(channel: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    """Before any training: a missing data file or channel is one line (exit 2); new data that copies a test item
    of a suite the release was evaluated on stops the cycle (exit 1) and nothing is trained or promoted."""
    recipe = ROOT / "adapters" / "continual.yaml"
    work = tmp_path / "cycles"
    assert tg("cycle", str(recipe), "--data", str(tmp_path / "none.jsonl"), "--channel", "approved",
              "--workdir", str(work)) == 2
    assert "new data file not found" in err_line(capsys)
    data = tmp_path / "new.jsonl"
    test_row = json.loads((ROOT / "harness/builtin_suites/medical/data/pubmedqa_test.jsonl").read_text().splitlines()[0])
    data.write_text(json.dumps({"prompt": test_row["context"], "completion": " yes"}) + "\n")
    assert tg("cycle", str(recipe), "--data", str(data), "--channel", "nope", "--workdir", str(work)) == 2
    assert "no channel 'nope'" in err_line(capsys)
    assert tg("cycle", str(recipe), "--data", str(data), "--channel", "approved", "--workdir", str(work), "-q") == 1
    out = capsys.readouterr().out
    assert "not promoted: CONTAMINATED" in out
    assert (work / "approved-2" / "audit.json").is_file() and not (work / "approved-2" / "adapter").exists()
    assert tg("history", "--channel", "approved", "--metric", "medical/acc") == 0
    assert "over 1 release " in capsys.readouterr().out
