"""lm-eval task files whose metrics are the task's own Python (process_results, a !function metric or
aggregation), TER, and sampled generation with repeats: each on its own rows, checked against the number
lm-eval computes from the same per-item values (its functions applied here by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.core.api import GenSettings, Request
from harness.data.suite import load_suite

ROWS = [{"question": f"Which number follows {i}?", "choices": [str(i + 1), str(i + 7), f"{i} and more"],
         "answer": i % 3} for i in range(12)]
MC = """task: own_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.json
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: answer
"""
UTILS = '''
def process_results(doc, results):
    lls = [ll for ll, _ in results]
    gold = doc["answer"]
    best_other = max(ll for i, ll in enumerate(lls) if i != gold)
    return {"acc": float(lls.index(max(lls)) == gold), "margin": lls[gold] - best_other,
            "pair": (gold, lls.index(max(lls)))}


def macro_recall(items):
    """Mean over gold classes of the share predicted right (a corpus-level metric of (gold, pred) pairs)."""
    by_gold = {}
    for gold, pred in items:
        by_gold.setdefault(gold, []).append(gold == pred)
    return sum(sum(v) / len(v) for v in by_gold.values()) / len(by_gold)


def scaled_mean(items):
    return 100 * sum(items) / len(items)


def no_docs(dataset):
    return dataset.filter(lambda doc: doc["question"] == "not in this split")


def starts_same(references, predictions):
    return float(predictions[0][:3] == references[0][:3])
'''


def task_dir(tmp_path: Path, yaml_text: str, rows: list[dict[str, Any]] = ROWS) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "data.json").write_text(json.dumps(rows))
    (folder / "utils.py").write_text(UTILS)
    (folder / "task.yaml").write_text(yaml_text)
    return folder


def run(tmp_path: Path, folder: Path, name: str = "run") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / name
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(folder / "task.yaml"), "--trust-task-code", str(folder),
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def test_process_results_gives_each_metric_per_item_and_a_function_aggregates_one_over_the_corpus(
        tmp_path: Path) -> None:
    folder = task_dir(tmp_path, MC + "process_results: !function utils.process_results\nmetric_list:\n"
                      "  - metric: acc\n  - metric: margin\n    higher_is_better: true\n"
                      "  - metric: pair\n    aggregation: !function utils.macro_recall\n")
    results, samples = run(tmp_path, folder)
    got = results["suites"]["own_mc"]["tasks"]["own_mc"]["metrics"]
    # lm-eval's numbers, from the recorded loglikelihoods by the task's own rules
    pairs, accs, margins = [], [], []
    for s in samples:
        lls = s["logliks"]
        gold = s["target"] if isinstance(s["target"], int) else s["choices"].index(s["target"])
        pred = lls.index(max(lls))
        pairs.append((gold, pred))
        accs.append(float(pred == gold))
        margins.append(lls[gold] - max(ll for i, ll in enumerate(lls) if i != gold))
        assert s["scores"]["acc"] == accs[-1] and s["scores"]["margin"] == pytest.approx(margins[-1])
        assert "pair" not in s["scores"] and s["extra"]["lmeval_values"]["pair"] == [gold, pred]
    by_gold: dict[int, list[bool]] = {}
    for gold, pred in pairs:
        by_gold.setdefault(gold, []).append(gold == pred)
    recall = sum(sum(v) / len(v) for v in by_gold.values()) / len(by_gold)
    assert len(samples) == 12 and got["acc"]["value"] == pytest.approx(sum(accs) / 12)
    assert got["margin"]["value"] == pytest.approx(sum(margins) / 12) and got["margin"]["n"] == 12
    assert got["pair"]["value"] == pytest.approx(recall) and got["pair"]["n"] == 12
    lo, hi = got["pair"]["ci95"]
    assert lo <= recall <= hi and hi > lo  # the bootstrap interval of a corpus-level metric


def test_a_custom_aggregation_is_corpus_level_in_compare(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = task_dir(tmp_path, MC + "metric_list:\n  - metric: acc\n    aggregation: !function utils.scaled_mean\n"
                      "  - metric: acc_norm\n")
    results, samples = run(tmp_path, folder)
    got = results["suites"]["own_mc"]["tasks"]["own_mc"]["metrics"]
    accs = [s["extra"]["lmeval_values"]["acc"] for s in samples]
    assert got["acc"]["value"] == pytest.approx(100 * sum(accs) / len(accs)) and "acc" not in samples[0]["scores"]
    assert "acc_norm" in samples[0]["scores"]  # the registry's metric, per sample as before
    run(tmp_path, folder, "again")
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "run"), str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "acc " in x and "acc_norm" not in x)
    assert "corpus-level" in line
    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n  - {suite: own_mc, metric: acc, non_inferiority: 1.0}\n")
    args = ["gate", str(gate), "--baseline", str(tmp_path / "run"), "--candidate", str(tmp_path / "again")]
    assert main(args) == 2 and "corpus-level" in capsys.readouterr().err  # no paired interval exists
    gate.write_text("rules:\n  - {suite: own_mc, metric: acc, floor: 0.0}\n")
    assert main([*args, "--verdict", str(tmp_path / "verdict.json")]) == 0  # the candidate's interval is above 0
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"


def test_without_consent_a_function_aggregation_is_refused_in_one_line(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    folder = task_dir(tmp_path, MC + "metric_list:\n  - metric: acc\n    aggregation: !function utils.scaled_mean\n")
    assert main(["suites", "validate", str(folder / "task.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metric_list[0].aggregation" in err and "--trust-task-code" in err


GEN = """task: own_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.json
test_split: test
output_type: generate_until
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{choices[answer]}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
"""


def test_a_function_metric_and_ter_on_generated_text(tmp_path: Path) -> None:
    from sacrebleu.metrics import TER

    folder = task_dir(tmp_path, GEN + "metric_list:\n  - metric: !function utils.starts_same\n"
                      "  - metric: ter\n    aggregation: ter\n    higher_is_better: false\n")
    results, samples = run(tmp_path, folder)
    got = results["suites"]["own_gen"]["tasks"]["own_gen"]["metrics"]
    same = [float(s["extra"]["extracted"][:3] == s["target"][:3]) for s in samples]
    assert [s["scores"]["starts_same"] for s in samples] == same
    assert got["starts_same"]["value"] == pytest.approx(sum(same) / len(same))
    ter = TER().corpus_score([s["response"] for s in samples], [[s["target"] for s in samples]]).score
    assert got["ter"]["value"] == pytest.approx(ter) and got["ter"]["higher_is_better"] is False


def test_sampling_with_repeats_and_majority_vote_is_self_consistency(tmp_path: Path) -> None:
    folder = task_dir(tmp_path, GEN.replace("  max_gen_toks: 8\n", "  max_gen_toks: 8\n  do_sample: true\n"
                                            "  temperature: 0.7\n  top_p: 0.9\n")
                      + "repeats: 4\nfilter_list:\n  - name: maj\n    filter:\n      - function: majority_vote\n"
                        "      - function: take_first\nmetric_list:\n  - metric: exact_match\n", ROWS[:3])
    task = load_suite(folder / "task.yaml").tasks[0]
    gen = task.spec.generation
    assert gen is not None and (gen.samples, gen.temperature, gen.top_p) == (4, 0.7, 0.9)
    results, samples = run(tmp_path, folder)
    assert results["suites"]["own_gen"]["tasks"]["own_gen"]["metrics"]["exact_match_strict"]["n"] == 3
    again, samples2 = run(tmp_path, folder, "again")
    assert [s["response"] for s in samples] == [s["response"] for s in samples2]


@pytest.mark.parametrize("edit,field", [
    (("  max_gen_toks: 8\n", "  max_gen_toks: 8\n  do_sample: true\n  top_k: 40\n"), "generation_kwargs.top_k"),
    (("  max_gen_toks: 8\n", "  max_gen_toks: 8\n  num_beams: 4\n"), "generation_kwargs.num_beams"),
    (("test_split: test\n", "test_split: test\nprocess_results: utils.process_results\n"), "process_results"),
])
def test_what_stays_refused_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, edit: tuple[str, str],
                                        field: str) -> None:
    folder = task_dir(tmp_path, GEN.replace(*edit))
    assert main(["suites", "validate", str(folder / "task.yaml"), "--trust-task-code", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "task.yaml" in err


def test_hf_sampling_is_seeded_per_prompt_not_per_batch(tiny_model: Path) -> None:
    from harness.models import load_backend

    backend = load_backend(str(tiny_model))
    gen = GenSettings(max_new_tokens=6, temperature=1.0, seed=7)
    prompts = ["The cat", "A much longer prompt about dogs and", "Hello"]
    together = backend.generate([Request("generate", p, gen=gen) for p in prompts])
    alone = [backend.generate([Request("generate", p, gen=gen)])[0] for p in reversed(prompts)][::-1]
    assert [r.text for r in together] == [r.text for r in alone]


def test_a_task_module_that_exits_on_import_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = task_dir(tmp_path, MC + "process_results: !function quits.process_results\n")
    (folder / "quits.py").write_text("import sys\nsys.exit('Error: a tool this task needs is not installed')\n")
    assert main(["suites", "validate", str(folder / "task.yaml"), "--trust-task-code", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SystemExit" in err and "process_results" in err


def test_lm_evals_f1_and_matthews_aggregations_match_sklearns_worked_examples() -> None:
    from harness.scoring.lmeval_results import f1_binary, matthews

    # sklearn's matthews_corrcoef docstring: [+1, +1, +1, -1] against [+1, -1, +1, +1] is -0.33
    assert matthews([(1, 1), (1, -1), (1, 1), (-1, 1)]) == pytest.approx(-1 / 3)
    # multiclass (Gorodkin's K-category form); sklearn gives 0.3550234734023465 on these
    assert matthews(list(zip([0, 1, 2, 0, 1, 2, 2], [0, 2, 1, 0, 0, 2, 2]))) == pytest.approx(0.3550234734023465)
    # binary F1 of label 1: TP 2, FP 0, FN 1 -> 4 / 5; no positive at all -> 0, as sklearn
    assert f1_binary([(0, 0), (1, 1), (1, 0), (0, 0), (1, 1)]) == pytest.approx(0.8)
    assert f1_binary([(0, 0), (0, 0)]) == 0.0


def test_mc_f1_with_metric_options_is_lm_evals_corpus_f1(tmp_path: Path) -> None:
    rows = [{"question": f"Is {i} even?", "choices": ["no", "yes"], "answer": int(i % 2 == 0)} for i in range(10)]
    folder = task_dir(tmp_path, MC + "metric_list:\n  - metric: f1\n    average: macro\n    aggregation: f1\n"
                      "  - metric: mcc\n", rows)
    results, samples = run(tmp_path, folder)
    got = results["suites"]["own_mc"]["tasks"]["own_mc"]["metrics"]
    pairs = [(s["choices"].index(s["target"]), s["logliks"].index(max(s["logliks"]))) for s in samples]
    tp = sum(g == 1 and p == 1 for g, p in pairs)
    wrong = sum(g != p for g, p in pairs)
    assert got["f1"]["value"] == pytest.approx(2 * tp / (2 * tp + wrong) if tp or wrong else 0.0)
    assert [s["extra"]["lmeval_values"]["mcc"] for s in samples] == [list(p) for p in pairs]
    assert got["mcc"]["n"] == 10 and -1 <= got["mcc"]["value"] <= 1


def test_a_split_that_process_docs_empties_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = task_dir(tmp_path, MC + "process_docs: !function utils.no_docs\n")
    assert main(["suites", "validate", str(folder / "task.yaml"), "--trust-task-code", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no documents left after process_docs" in err and "Traceback" not in err
