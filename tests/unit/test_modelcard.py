"""The model card carries n and the 95% interval with every figure, and never a zero-width interval."""

from pathlib import Path

from harness.train.modelcard import write_model_card


def test_card_figures_carry_interval_and_n(tmp_path: Path) -> None:
    (tmp_path / "provenance.json").write_text('{"method": "lora", "base": {"model": "m"}, "seed": 1}')
    results = {"suites": {"medical": {"fingerprint": "f", "tasks": {
        "safety": {"kind": "generate", "metrics": {
            "rubric_pass": {"value": 0.5, "ci95": [0.1, 0.9], "n": 6},
            "refusal_rate": {"value": 1.0, "ci95": [1.0, 1.0], "n": 1}}}}}}}
    text = write_model_card(tmp_path, results).read_text()
    assert "| medical | safety | rubric_pass | 0.5000 | [0.1000, 0.9000] | 6 |" in text
    assert "| medical | safety | refusal_rate | 1.0000 | undefined at this n | 1 |" in text
