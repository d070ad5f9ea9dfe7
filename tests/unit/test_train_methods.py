"""Every training method trains 2 steps on the tiny model, saves, reloads through `tunegate eval -a`, evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.flows.evaluate import evaluate
from harness.run.engine import EvalSettings
from harness.train import train, update_model_card
from tests.unit.train_helpers import PROVENANCE_KEYS, provenance, write_recipe

pytestmark = pytest.mark.slow  # real training or several processes: the full tier only

SFT_PEFT = {
    "lora": {"type": "lora", "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "ia3": {"type": "ia3"},
    "prompt_tuning": {"type": "prompt_tuning", "num_virtual_tokens": 4, "init_text": "Answer:"},
    "prefix_tuning": {"type": "prefix_tuning", "num_virtual_tokens": 4},
    "bottleneck": {"type": "bottleneck", "bottleneck_size": 4},
}


@pytest.fixture(scope="module")
def reward_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model trained once for the reward-model test and the policy-optimisation tests."""
    folder = tmp_path_factory.mktemp("rm")
    return train(write_recipe(folder, "reward-model", tiny_model, "reward_model"), progress=False)


def check_output(out: Path, method: str) -> dict:
    prov = provenance(out)
    assert set(PROVENANCE_KEYS) <= set(prov)
    assert prov["method"] == method
    assert prov["base"]["model_hash"] and prov["base"]["tokenizer_hash"]
    assert prov["seed"] == 7 and prov["library_versions"]["trl"] and prov["library_versions"]["peft"]
    assert 0 < prov["trainable_params"] <= prov["total_params"]
    assert prov["adapter_bytes"] > 0 and prov["tokens_per_second"] > 0 and prov["peak_memory_mb"] > 0
    assert any("loss" in point for point in prov["curve"])
    assert json.loads((out / "training_curve.json").read_text()) == prov["curve"]
    assert (out / "README.md").read_text().startswith("---\n")
    return prov


def evaluate_adapter(base: Path, out: Path) -> dict:
    """What `tunegate eval -m BASE -a OUT -s basics --limit 2` does."""
    results = evaluate(str(base), [str(out)], ["basics"], None, EvalSettings(limit=2, progress=False))
    assert results[0]["model"]["adapter"]["name"] == out.name
    return results[0]


@pytest.mark.parametrize("kind", sorted(SFT_PEFT))
def test_sft_peft_trains_saves_reloads_and_evaluates(kind: str, tiny_model: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, kind, tiny_model, peft=SFT_PEFT[kind],
                          eval={"suites": ["basics"], "every_steps": 1, "limit": 2})
    out = train(recipe, progress=False)
    prov = check_output(out, kind)
    assert prov["trainable_params"] < prov["total_params"]  # only the adapter trains
    steps = [p["step"] for p in prov["curve"]]
    assert steps == [0, 1, 2]
    assert "basics/capitals/acc" in prov["curve"][-1] and "eval_loss" in prov["curve"][0]
    results = evaluate_adapter(tiny_model, out)
    card = update_model_card(out, results)
    assert "model-index" in card.read_text() and "capitals" in card.read_text()


def test_full_sft_writes_a_checkpoint_that_evaluates_as_a_model(tiny_model: Path, tmp_path: Path) -> None:
    out = train(write_recipe(tmp_path, "sft-full", tiny_model, peft={"type": "full"}), progress=False)
    prov = check_output(out, "sft-full")
    assert prov["trainable_params"] == prov["total_params"]
    results = evaluate(str(out), [], ["basics"], None, EvalSettings(limit=2, progress=False))
    assert results[0]["suites"]["basics"]["tasks"]["capitals"]["n"] == 2


def test_reward_model_reports_held_out_pairwise_accuracy(reward_model: Path, tiny_model: Path) -> None:
    prov = check_output(reward_model, "reward_model")
    assert 0.0 <= prov["held_out_pairwise_accuracy"] <= 1.0
    assert json.loads((reward_model / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    evaluate_adapter(tiny_model, reward_model)


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_preference_methods(method: str, tiny_model: Path, tmp_path: Path) -> None:
    out = train(write_recipe(tmp_path, method, tiny_model, method), progress=False)
    prov = check_output(out, method)
    assert prov["curve"][0]["step"] == 0 and "eval_loss" in prov["curve"][0]
    evaluate_adapter(tiny_model, out)


@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_policy_optimisation_against_the_reward_model(method: str, reward_model: Path, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    out = train(write_recipe(tmp_path, method, tiny_model, method, reward_model=str(reward_model)),
                progress=False)
    prov = check_output(out, method)
    assert prov["reward_model_hash"]
    assert any("reward" in key for point in prov["curve"] for key in point)
    evaluate_adapter(tiny_model, out)


def test_lora_merge_writes_the_merged_model(tiny_model: Path, tmp_path: Path) -> None:
    out = train(write_recipe(tmp_path, "lora", tiny_model), merge=True, progress=False)
    merged = out / "merged"
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    adapter = evaluate_adapter(tiny_model, out)
    whole = evaluate(str(merged), [], ["basics"], None, EvalSettings(limit=2, progress=False))[0]
    task = "sentences"
    a = adapter["suites"]["basics"]["tasks"][task]["metrics"]["token_perplexity"]["value"]
    b = whole["suites"]["basics"]["tasks"][task]["metrics"]["token_perplexity"]["value"]
    assert a == pytest.approx(b, rel=1e-4)  # merged weights answer as base + adapter do


def test_unchanged_recipe_is_reused_and_a_changed_one_retrains(tiny_model: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from harness.train import is_up_to_date

    recipe = write_recipe(tmp_path, "lora", tiny_model)
    assert not is_up_to_date(recipe)
    out = train(recipe, progress=False)
    stamp = (out / "adapter_model.safetensors").stat().st_mtime_ns
    assert is_up_to_date(recipe)
    train(recipe, progress=True)
    assert "up to date" in capsys.readouterr().err
    assert (out / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    write_recipe(tmp_path, "lora", tiny_model, seed=8)
    assert not is_up_to_date(recipe)
