"""Discoverability at the keyboard (issue 28): what `suites validate` counts, a missing choices column named,
confirmations of --save-baseline and --junit, --store help without a path $TUNEGATE_HOME would change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from tests.unit.runfixtures import build_run

SUITE = """name: s1
tasks:
  - name: t
    kind: multiple_choice
    data: {test: data/test.jsonl, train: data/train.jsonl}
    prompt: "{{ question }}"
    choices: "options"
    target: "answer"
    chat_template: false
    fewshot: {n: 1, split: train}
    metrics: [acc]
"""


def _suite(root: Path, column: str = "options", train_rows: int = 3) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "suite.yaml").write_text(SUITE)
    row = lambda i: json.dumps({"question": f"q{i}", column: ["a", "b"], "answer": i % 2}) + "\n"  # noqa: E731
    (root / "data" / "test.jsonl").write_text("".join(row(i) for i in range(2)))
    (root / "data" / "train.jsonl").write_text("".join(row(i) for i in range(train_rows)))
    return root


def test_validate_counts_evaluated_rows_apart_from_few_shot_rows(tmp_path, capsys):
    suite = _suite(tmp_path / "s1")
    assert main(["suites", "validate", str(suite)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"ok  {suite}: 1 task, 2 rows evaluated, 3 few-shot rows (not evaluated)"
    assert main(["suites", "validate", "--limit", "1", str(suite)]) == 0
    assert "1 rows evaluated (of 2 in the evaluated splits), 3 few-shot rows" in capsys.readouterr().out


def test_a_missing_choices_column_is_named(tmp_path, capsys):
    suite = _suite(tmp_path / "s1", column="opts")
    assert main(["suites", "validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Undefined" not in err[0]
    assert "choices: 'options' is named by the template but missing from the data" in err[0]
    assert "columns: question, opts, answer" in err[0] and "tasks[t]" in err[0]


def test_gate_confirms_the_junit_file(tmp_path, capsys):
    b = build_run(tmp_path / "b", scores={("s", "t"): {"acc": [1.0, 0.0] * 10}})
    c = build_run(tmp_path / "c", scores={("s", "t"): {"acc": [1.0, 0.0] * 10}}, adapter="lora")
    (tmp_path / "g.yaml").write_text("rules:\n  - {suite: s, floor: 0.1}\n")
    junit = tmp_path / "junit.xml"
    main(["gate", str(tmp_path / "g.yaml"), "--baseline", str(b), "--candidate", str(c), "--junit", str(junit)])
    assert f"wrote {junit} (JUnit: one testcase per rule)" in capsys.readouterr().out and junit.is_file()


def test_save_baseline_confirms_where_the_run_went(small_suite, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store.sqlite"
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(small_suite), "--store", str(store),
                 "--save-baseline", "approved"]) == 0
    out = capsys.readouterr().out
    assert f"as baseline 'approved' (release 1 of channel 'approved' in the store {store}): use --baseline approved" in out
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(small_suite), "--store", str(store),
                 "--save-baseline", "approved"]) == 0
    assert "(release 2 of channel 'approved'" in capsys.readouterr().out


def _store_helps(parser) -> list[str]:
    found = []
    for action in parser._actions:
        if "--store" in getattr(action, "option_strings", []):
            found.append(action.help or "")
        choices = getattr(action, "choices", None)
        for sub in (choices.values() if isinstance(choices, dict) else []):
            if hasattr(sub, "_actions"):
                found += _store_helps(sub)
    return found


def test_no_store_help_names_a_path_that_tunegate_home_changes():
    helps = _store_helps(build_parser())
    assert len(helps) >= 15
    for text in helps:
        assert "~/.cache" not in text and "$TUNEGATE_HOME" in text and "$TUNEGATE_STORE" in text, text


@pytest.mark.parametrize("args", [["metrics", "list", "--help"]])
def test_metrics_list_has_help(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0 and "--kind" in capsys.readouterr().out
