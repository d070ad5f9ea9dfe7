"""`eval --until-decided` on the real embedded SmolLM2-135M: an identical candidate stops early with a
non-inferiority PASS, a broken adapter stops early with a FAIL, and both print the items they saved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import write_suite

N = 150
TASK = """  - name: sums
    kind: multiple_choice
    data: {test: data/sums.jsonl}
    prompt: "Question: {{ q }}\\nAnswer:"
    choices: opts
    target: gold
    chat_template: false
    metrics: [acc]
"""


def _suite(root: Path) -> Path:
    """Sums of two digits (10 to 18) against two far-off distractors of the same length, so that a model
    that only prefers short answers gains nothing: the embedded model answers most of them."""
    rng = random.Random(0)
    rows = []
    while len(rows) < N:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        if a + b >= 10:
            rows.append({"q": f"What is {a} plus {b}?", "opts": [str(a + b), str(a + b + 10), str(a + b + 20)],
                         "gold": 0})
    return write_suite(root, TASK, {"data/sums.jsonl": rows}, name="sums")


def _broken_adapter(out: Path) -> Path:
    """A LoRA adapter with large random weights on every projection: it wrecks the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.models import load_backend

    model = AutoModelForCausalLM.from_pretrained(load_backend("smollm2-135m").source.path)
    torch.manual_seed(0)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, init_lora_weights=False,
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj",
                                                            "down_proj", "gate_proj"]))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 2.0)
    peft.save_pretrained(out)
    return out


@pytest.mark.slow
def test_until_decided_on_the_embedded_model(tmp_path: Path, capsys) -> None:
    suite = _suite(tmp_path / "suite")
    # the baseline run holds only 10 items: the rest are evaluated on demand (the cache answers them for an
    # identical candidate)
    assert main(["eval", "-q", "-s", str(suite), "--limit", "10", "--out", str(tmp_path / "base")]) == 0
    capsys.readouterr()

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("rules:\n  - suite: sums\n    non_inferiority: 0.3\n")
    code = main(["eval", "-q", "-s", str(suite), "--until-decided", str(lenient), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "same")])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    verdict = json.loads((tmp_path / "same" / "verdict.json").read_text())
    rule = verdict["rules"][0]
    assert rule["verdict"] == "PASS" and rule["method"].startswith("betting confidence sequence")
    assert rule["n"] < N and f"items {rule['n']} of {N} available" in out and "% saved" in out
    assert verdict["sequential"]["stopped"] == "decided"

    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n  - suite: sums\n    non_inferiority: 0.05\n")
    broken = _broken_adapter(tmp_path / "broken")
    code = main(["eval", "-q", "-a", str(broken), "-s", str(suite), "--until-decided", str(strict), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "worse")])
    out = capsys.readouterr().out
    print(out)
    assert code == 1, out
    verdict = json.loads((tmp_path / "worse" / "verdict.json").read_text())
    assert verdict["rules"][0]["verdict"] == "FAIL" and verdict["rules"][0]["n"] < N
    assert "% saved" in out
    # the written sequential run gates the same way against the baseline answers it was judged on
    assert main(["gate", str(strict), "--baseline", str(tmp_path / "worse" / "baseline"), "--candidate",
                 str(tmp_path / "worse"), "--verdict", str(tmp_path / "v.json")]) == 1
