"""The references (docs/suite-reference.md, gate-reference.md, recipe-reference.md) are generated from the
schemas and the metric registry and must be current; `tunegate metrics list` prints the registry (issue 28)."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.flows import reference
from harness.scoring.metric_docs import DESCRIPTIONS, is_builtin
from harness.scoring.metrics import REGISTRY


def test_checked_in_references_are_current():
    for rel, text in reference.render().items():
        have = (reference.ROOT / rel).read_text(encoding="utf-8")
        assert have == text, f"{rel} is stale: run `python -m harness.flows.reference` and commit the result"


def test_every_field_and_every_builtin_metric_is_explained():
    for rel, text in reference.render().items():
        rows = [line for line in text.splitlines() if line.startswith("| `")]
        assert rows, rel
        blank = [row.split("|")[1].strip() for row in rows if row.rstrip().endswith("|  |")]
        assert not blank, f"{rel}: no meaning for {blank}: add a comment on the field or a line in FIELD_DOCS"
    missing = [name for name, m in REGISTRY.items() if is_builtin(m) and name not in DESCRIPTIONS]
    assert not missing, f"built-in metrics without a line in harness/scoring/metric_docs.py: {missing}"
    suite = reference.render()["docs/suite-reference.md"]
    for name in (n for n, m in REGISTRY.items() if is_builtin(m)):
        assert f"| `{name}` |" in suite
    assert "| `refusal_rate` | generate | ↑ higher |" in suite and "| `bits_per_byte` | perplexity | ↓ lower |" in suite


def test_metrics_list_through_the_cli(capsys):
    assert main(["metrics", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(REGISTRY)
    bleu = next(r for r in rows if r["name"] == "bleu")
    assert (bleu["level"], bleu["range"], bleu["direction"]) == ("corpus", "0–100", "↑ higher")
    assert main(["metrics", "list", "--kind", "code"]) == 0
    out = capsys.readouterr().out
    assert "pass@1" in out and "acc_norm" not in out and "↑ higher" in out


def test_an_unknown_kind_is_one_line_and_exit_2(capsys):
    assert main(["metrics", "list", "--kind", "multiple_chioce"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'multiple_choice'" in err[0] and "--kind" in err[0]


@pytest.mark.parametrize("rel", sorted(reference.PAGES.values()))
def test_references_are_linked_from_the_readme(rel):
    assert rel in (reference.ROOT / "README.md").read_text(encoding="utf-8")
