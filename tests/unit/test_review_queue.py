"""Review queue: items built from run directories, stored once, resumed on reopening; the store tables."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.core.api import UserError
from harness.review.queue import DEFAULT_AXES, build_queue
from harness.storage.review import ReviewDB
from tests.unit.runfixtures import build_run

EVIL = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">"


def make_runs(root: Path, n: int = 6, *, models: tuple[str | None, ...] = (None, "med-lora"),
              suite: str = "medical", evil: bool = False) -> list[Path]:
    """Run directories (docs/run-format.md) whose generated responses differ by model, except sample 0."""
    paths = []
    for k, adapter in enumerate(models):
        texts = ["same answer"] + [f"{adapter or 'base'} says answer {i}" for i in range(1, n)]
        if evil and k == 1:
            texts[1] = EVIL
        paths.append(build_run(root / (adapter or "base"), scores={(suite, "qa"): {"acc": [float(i % 2) for i in range(n)]}},
                               responses={(suite, "qa"): texts}, adapter=adapter, kind="generate"))
    return paths


def test_pairwise_items_pair_the_same_sample_and_skip_identical(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path), mode="pairwise", reviewers_per_item=2, db=db)
    assert len(queue.items) == 5 and queue.skipped_identical == 1
    item = queue.items[0]
    assert [m["label"] for m in item.models] == ["base", "med-lora"]
    assert item.responses == ["base says answer 1", "med-lora says answer 1"]
    assert {it.sample_id for it in queue.items} == {f"qa/{i}" for i in range(1, 6)}


def test_three_runs_give_every_pair(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, models=(None, "a", "b")), db=db)
    pairs = {tuple(m["label"] for m in it.models) for it in queue.items}
    assert pairs == {("base", "a"), ("base", "b"), ("a", "b")}


def test_rating_items_use_default_axes_when_the_suite_declares_none(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path, suite="no-such-suite"), mode="rating", db=db)
    assert len(queue.items) == 12
    assert all(it.axes == DEFAULT_AXES and len(it.responses) == 1 for it in queue.items)


def test_rating_items_use_the_suite_rubric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite_dir = tmp_path / "suites" / "rubricked"
    suite_dir.mkdir(parents=True)
    (suite_dir / "data.jsonl").write_text(json.dumps({"q": "x", "a": "y"}) + "\n")
    (suite_dir / "suite.yaml").write_text(
        "name: rubricked\nrubric: [factuality, safety]\ntasks:\n  - name: qa\n    kind: generate\n"
        "    data: {test: data.jsonl}\n    prompt: '{{ q }}'\n    target: a\n    chat_template: false\n"
        "    metrics: [exact_match]\n")
    monkeypatch.setenv("TUNEGATE_SUITES_PATH", str(tmp_path / "suites"))  # suites are found by the search path
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path / "runs", suite="rubricked"), mode="rating", db=db)
    assert queue.items[0].axes == ["factuality", "safety"]


def test_reopening_the_same_runs_resumes_the_same_queue(tmp_path: Path) -> None:
    runs = make_runs(tmp_path)
    db = ReviewDB(tmp_path / "store.sqlite")
    first = build_queue(runs, db=db)
    with pytest.raises(UserError, match="--reset-queue"):  # a live queue's settings change only when asked
        build_queue(runs, db=db, reviewers_per_item=3)
    again = build_queue(runs, db=db, reviewers_per_item=3, reset=True)
    assert first.queue_id == again.queue_id and again.reviewers_per_item == 3
    assert db.db.execute("SELECT count(*) FROM review_items").fetchone()[0] == 5
    assert db.db.execute("SELECT count(*) FROM review_queue_items").fetchone()[0] == 5
    assert db.db.execute("SELECT reviewers_per_item FROM review_queues").fetchone()[0] == 3


def test_review_tables_live_in_the_shared_store_in_wal_mode(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    names = {r[0] for r in db.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "records", "review_items", "review_assignments", "review_judgments"} <= names
    assert db.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_item_goes_to_n_reviewers_and_left_right_is_recorded(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    queue = build_queue(make_runs(tmp_path), reviewers_per_item=2, db=db)
    rng = random.Random(0)
    seen: dict[str, list[str]] = {}
    orders = set()
    for who in ("ann", "bob", "cy"):
        for _ in range(10):  # bounded: the queue holds 5 items
            found = db.next_for(queue.queue_id, who, rng)
            if not found:
                break
            item, order = found
            orders.add(tuple(order))
            seen.setdefault(item.item_id, []).append(who)
            db.add_judgment(item.item_id, who, choice="A", ratings=None, comment=None)
    assert all(len(v) == 2 for v in seen.values()) and len(seen) == 5
    assert "cy" not in {w for v in seen.values() for w in v}  # ann and bob took both slots of every item
    assert orders == {(0, 1), (1, 0)}
    stored = db.db.execute("SELECT count(*) FROM review_assignments").fetchone()[0]
    assert stored == 10


def test_bad_runs_are_user_errors(tmp_path: Path) -> None:
    db = ReviewDB(tmp_path / "store.sqlite")
    with pytest.raises(UserError, match="at least two runs"):
        build_queue(make_runs(tmp_path)[:1], db=db)
    with pytest.raises(UserError, match="no such run directory"):
        build_queue([tmp_path / "missing", tmp_path / "missing2"], db=db)
