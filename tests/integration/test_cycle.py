"""The continuous-learning loop on the embedded model: cycles of new data → train from the approved adapter →
eval → gate (against the release and the first release) → promote; then history and the report's History.

Two cycles cover both starts: the first trains from scratch (the release is the bare base), the second goes on
from the adapter the channel then holds (a third cycle would repeat the second)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.flows.evaluate import evaluate
from harness.report.screenshot import CHROMIUM, CHROMIUM_ARGS
from harness.run.engine import EvalSettings

GATE = """on_inconclusive: pass
reason: "loop test: 2 items per task decide nothing; the ledger must still record each step"
rules:
  - {suite: basics, task: capitals, metric: acc, non_inferiority: 0.5}
  - max_drift: {from: first, metric: basics/capitals/acc, margin: 0.5}
"""


def new_data(path: Path, cycle: int) -> Path:
    rows = [{"prompt": f"Cycle {cycle} note {i}: what colour is the sample marked {cycle * 10 + i}?",
             "completion": f" It is marked {['red', 'green', 'blue', 'amber'][i % 4]}."} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_release_cycles_then_history(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    evaluate("smollm2-135m", [], ["basics"], tmp_path / "base", EvalSettings(limit=2, progress=False))
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    assert main(["channel", "create", "approved", "--gate", str(gate), "--release", str(tmp_path / "base")]) == 0
    recipe = tmp_path / "loop.yaml"
    recipe.write_text(yaml.safe_dump({
        "base": "smollm2-135m", "method": "sft", "peft": {"type": "lora"}, "init_adapter": "approved",
        "data": {"file": "placeholder.jsonl", "eval_fraction": 0.0},
        "train": {"max_steps": 1, "batch_size": 2, "max_length": 64}, "seed": 3}))
    for cycle in (1, 2):
        data = new_data(tmp_path / f"new-{cycle}.jsonl", cycle)
        code = main(["cycle", str(recipe), "--data", str(data), "--channel", "approved", "--workdir",
                     str(tmp_path / "cycles"), "-q"])
        out = capsys.readouterr().out
        assert code == 0 and f"as release {cycle + 1}" in out, out
    # the first cycle trained from scratch, the second on from the adapter the channel held
    first = json.loads((tmp_path / "cycles" / "approved-2" / "adapter" / "provenance.json").read_text())
    assert first["init_adapter"] is None
    prov = json.loads((tmp_path / "cycles" / "approved-3" / "adapter" / "provenance.json").read_text())
    assert "approved-2" in prov["init_adapter"]["path"]
    assert main(["history", "--channel", "approved", "--metric", "basics/capitals/acc"]) == 0
    out = capsys.readouterr().out
    assert "over 3 releases" in out and all(f"   {n} " in out for n in (1, 2, 3))
    assert main(["runs", "show", "approved@3"]) == 0
    shown = capsys.readouterr().out
    assert "PASS" in shown and "(loop test: 2 items" in shown  # the verdict, with on_inconclusive's reason
    page = tmp_path / "report.html"
    assert main(["report", "--channel", "approved", "--html", str(page)]) == 0
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            view = browser.new_page()
            view.goto(page.as_uri())
            section = view.locator("#history")
            assert section.is_visible() and "History" in section.inner_text()
            assert view.locator("#history svg").count() >= 1
            assert view.locator("#history svg circle").count() == 3 * view.locator("#history svg").count()
        finally:
            browser.close()
