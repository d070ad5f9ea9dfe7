"""The data audit: duplicates, empty/over-long rows, label balance, 13-gram contamination, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main
from harness.data.audit import AuditSettings, Item, audit, contamination
from tests.conftest import write_suite

TEXTS = [
    "The river flooded the lower fields after three days of heavy rain in early spring.",
    "A small bakery on the corner sells fresh bread every morning before seven o'clock.",
    "The orchestra rehearsed the second movement twice before the evening concert began.",
    "Volunteers planted two hundred oak saplings along the old railway embankment last year.",
    "The museum's new wing displays maps drawn by sailors during the eighteenth century voyages.",
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _suite(root: Path, train: list[dict], test: list[dict]) -> Path:
    yaml = """  - name: facts
    kind: generate
    data: {test: data/test.jsonl, train: data/train.jsonl}
    prompt: "Continue: {{ text }}"
    target: label
    chat_template: false
    metrics: [exact_match]
"""
    return write_suite(root, yaml, {"data/test.jsonl": test, "data/train.jsonl": train}, name="mini")


def test_planted_exact_and_near_duplicates_are_reported(tmp_path: Path) -> None:
    rows = [{"text": t, "label": "a"} for t in TEXTS]
    rows.append({"text": TEXTS[1].upper(), "label": "a"})  # same words, other case: an exact duplicate
    rows[3] = {"text": TEXTS[3] + " " + TEXTS[4], "label": "b"}
    rows.append({"text": TEXTS[3] + " " + TEXTS[4] + " Indeed", "label": "b"})  # a near duplicate
    report = audit(str(_jsonl(tmp_path / "d.jsonl", rows)))
    assert report["exact_duplicates"] == [["d.jsonl#2", "d.jsonl#6"]]
    assert [(a, b) for a, b, _ in report["near_duplicates"]] == [("d.jsonl#4", "d.jsonl#7")]
    assert report["label_balance"] == {"d.jsonl": {"a": 5, "b": 2}}


def test_near_threshold_is_declared(tmp_path: Path) -> None:
    rows = [{"text": TEXTS[3] + " " + TEXTS[4]}, {"text": TEXTS[3] + " " + TEXTS[4] + " Indeed"}]
    path = _jsonl(tmp_path / "d.jsonl", rows)
    assert audit(str(path), settings=AuditSettings(near_threshold=0.99))["near_duplicates"] == []
    assert audit(str(path), settings=AuditSettings(near_threshold=0.5))["near_duplicates"]


def test_empty_and_over_long_rows(tmp_path: Path) -> None:
    rows = [{"text": TEXTS[0]}, {"text": "   "}, {"text": "word " * 100}]
    report = audit(str(_jsonl(tmp_path / "d.jsonl", rows)), settings=AuditSettings(max_chars=200))
    assert report["empty"] == ["d.jsonl#2"] and report["over_long"] == ["d.jsonl#3"]


def test_planted_leak_in_a_suite_fails_with_exit_1(tmp_path: Path, capsys) -> None:
    test = [{"text": t, "label": "x"} for t in TEXTS[:3]]
    clean = _suite(tmp_path / "clean", [{"text": t, "label": "x"} for t in TEXTS[3:]], test)
    assert main(["data", "audit", str(clean)]) == 0
    leaked_train = [{"text": "Some preface. " + TEXTS[0][:-1] + " and more after it.", "label": "y"}]
    leaky = _suite(tmp_path / "leaky", leaked_train + [{"text": TEXTS[4], "label": "x"}], test)
    assert main(["data", "audit", str(leaky), "--json", str(tmp_path / "r.json")]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["contaminated"] == [{"test": "mini/facts/test#1", "train": "mini/facts/train#1"}]
    assert "FAIL" in capsys.readouterr().out
    # A declared threshold above the contaminated fraction (1 of 3) passes.
    assert main(["data", "audit", str(leaky), "--threshold", "0.5"]) == 0


def test_training_file_against_a_suite(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "s", [{"text": TEXTS[4], "label": "x"}], [{"text": t, "label": "x"} for t in TEXTS[:2]])
    clean = _jsonl(tmp_path / "clean.jsonl", [{"prompt": TEXTS[3], "response": "ok"}])
    leak = _jsonl(tmp_path / "leak.jsonl", [{"prompt": f"Continue: {TEXTS[0]}", "response": "x"}])
    assert main(["data", "audit", str(clean), "--against", str(suite)]) == 0
    assert main(["data", "audit", str(leak), "--against", str(suite)]) == 1


def test_short_items_count_when_their_whole_text_occurs() -> None:
    train = [Item("tr#1", "g", "Trivia: what is the capital of Peru? Lima, of course.")]
    assert contamination(train, [Item("te#1", "g", "What is the capital of Peru? Lima")])
    assert not contamination(train, [Item("te#2", "g", "capital of Peru")])  # too short to mean anything


def test_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["data", "audit", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert main(["data", "audit", str(bad)]) == 2
    assert main(["data", "audit", "no-such-suite"]) == 2
    err = capsys.readouterr().err
    assert err.count("tunegate: error:") == 3 and "Traceback" not in err
