"""tunegate vs lm-evaluation-harness, side by side in one run, on the embedded SmolLM2-135M (fp32, CPU).

Prints, with ratios:
1. multiple-choice scoring: whole-process wall time of both tools on the same lm-eval task file, agreement
   on acc/acc_norm and per-choice loglikelihoods, and scoring throughput against the forward roofline;
2. generation: batched greedy vs batch-1 `generate` (identical outputs), and lm-eval's generate_until;
3. never pay twice: a re-run with nothing changed (whole process, model not loaded);
4. adapter sweep: base + 3 adapters in one process vs the sum of the four scoring phases;
5. stock task files (copies of lm-eval's own, in tests/unit/lmeval_stock, data pointed at local JSON lines of
   original rows written here): acc, acc_norm and exact_match of both tools per task, and per-choice
   loglikelihoods, with one RESULT line;
6. a 5-shot multiple-choice task in MMLU's shape (lm-eval's own MMLU template, a fixed few-shot block from the
   dev split, `--questions N`, default 100, x 4 choices, original rows written here): whole-process time of
   lm-eval and of tunegate with and without shared-prefix reuse (`--no-share-prefix`), per-choice
   loglikelihoods of all three, with one RESULT line.

Run: `make bench` (installs lm_eval==0.4.13 into the venv) or `.venv/bin/python benchmarks/bench_lm_eval.py`;
`--only stock` runs section 5 alone, `--only fewshot` section 6 (about 100,000 tokens through the model: some 5 minutes on 2 quiet cores at 470 tokens/s, an estimate; 55 minutes on the shared machine). `$LM_EVAL` names
an lm_eval executable of another venv (default: ours).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "benchmarks" / "data" / "mc60.yaml"
GEN_TASK = ROOT / "benchmarks" / "data" / "gen32.yaml"
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return wall, proc


def model_dir() -> str:
    from harness.models import resolve_model

    return resolve_model("smollm2-135m").path


def run_lm_eval(task: Path, out: Path, batch: int = 16) -> tuple[float, dict, list[dict]]:
    wall, _ = timed([str(BIN / "lm_eval"), "--model", "hf", "--model_args",
                     f"pretrained={model_dir()},dtype=float32", "--tasks", task.stem, "--include_path",
                     str(task.parent), "--batch_size", str(batch), "--device", "cpu", "--log_samples",
                     "--output_path", str(out)], env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    results_file = sorted(out.rglob("results_*.json"))[-1]
    samples_file = sorted(out.rglob(f"samples_{task.stem}_*.jsonl"))[-1]
    results = json.loads(results_file.read_text())["results"][task.stem]
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    return wall, results, samples


def run_tunegate(task: Path, out: Path, store: Path, extra: list[str] | None = None) -> tuple[float, dict, list[dict]]:
    wall, _ = timed([str(BIN / "tunegate"), "eval", "-q", "-s", str(task), "--store", str(store), "--out", str(out),
                     *(extra or [])])
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return wall, results, samples


def roofline_tokens_per_second() -> float:
    """Tokens/s of one large batched forward pass (32 x 128), the ceiling scoring can reach."""
    import torch

    from harness.models import load_backend

    model = load_backend("smollm2-135m").model
    ids = torch.randint(100, 10_000, (32, 128))
    with torch.inference_mode():
        model(ids[:2, :16])
        start = time.perf_counter()
        model(ids)
        return ids.numel() / (time.perf_counter() - start)


def multiple_choice(tmp: Path) -> dict:
    le_wall, le_res, le_samples = run_lm_eval(TASK, tmp / "lm_eval")
    tg_wall, tg_res, tg_samples = run_tunegate(TASK, tmp / "tg", tmp / "store.sqlite")
    metrics = tg_res["suites"]["mc60"]["tasks"]["mc60"]["metrics"]
    le_ll = {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in le_samples}
    diffs = [abs(a - b) for i, s in enumerate(tg_samples) for a, b in zip(s["logliks"], le_ll[i])]
    roof = roofline_tokens_per_second()
    timing = tg_res["timing"]
    print("\n== 1. multiple choice (60 questions x 4 choices, lm-eval hf backend batch 16) ==")
    print(f"lm-eval whole process   {le_wall:7.2f} s   acc {le_res['acc,none']:.4f}  acc_norm {le_res['acc_norm,none']:.4f}")
    print(f"tunegate whole process  {tg_wall:7.2f} s   acc {metrics['acc']['value']:.4f}  acc_norm {metrics['acc_norm']['value']:.4f}")
    print(f"ratio tunegate/lm-eval  {tg_wall / le_wall:7.3f}   (target <= 0.25)")
    print(f"identical acc/acc_norm  {abs(le_res['acc,none'] - metrics['acc']['value']) < 1e-9 and abs(le_res['acc_norm,none'] - metrics['acc_norm']['value']) < 1e-9}")
    print(f"per-choice loglik       max |diff| {max(diffs):.2e} over {len(diffs)} choices (target < 1e-4)")
    print(f"forward roofline        {roof:7.1f} tokens/s (batch 32 x 128)")
    print(f"scoring throughput      {timing['tokens_per_second']:7.1f} tokens/s = {timing['tokens_per_second'] / roof:.0%} of roofline "
          f"({timing['tokens_processed']} tokens run in {timing['compute_seconds']} s)")
    return {"lm_eval_s": le_wall, "tunegate_s": tg_wall, "max_ll_diff": max(diffs)}


def generation(tmp: Path) -> None:
    from harness.core.api import GenSettings, Request
    from harness.models import load_backend

    rows = [json.loads(line) for line in (ROOT / "benchmarks" / "data" / "gen32.jsonl").read_text().splitlines()]
    # no stop sequence: every prompt decodes the full 32 tokens, so tokens/s measures decoding itself
    settings = GenSettings(max_new_tokens=32)
    backend = load_backend("smollm2-135m", batch_size=1)
    # chat prompts that ask for a few sentences, so most sequences decode all 32 tokens before EOS
    requests = [Request("generate", backend.apply_chat_template(f"{r['question']} Answer in three sentences."),
                        gen=settings) for r in rows]
    backend.generate(requests[:1])
    start = time.perf_counter()
    one = backend.generate(requests)
    one_s = time.perf_counter() - start
    backend.batch_size = 32
    start = time.perf_counter()
    many = backend.generate(requests)
    many_s = time.perf_counter() - start
    tokens = sum(r.n_tokens[0] for r in many)
    le_wall, le_res, _ = run_lm_eval(GEN_TASK, tmp / "lm_eval_gen", batch=32)
    tg_wall, tg_res, _ = run_tunegate(GEN_TASK, tmp / "tg_gen", tmp / "store_gen.sqlite", ["--batch-size", "32"])
    em = tg_res["suites"]["gen32"]["tasks"]["gen32"]["metrics"]["exact_match_strict"]["value"]
    print("\n== 2. generation (32 prompts, greedy, 32 new tokens each) ==")
    print(f"batch 1      {tokens / one_s:7.1f} tokens/s ({one_s:.2f} s)")
    print(f"batched 32   {tokens / many_s:7.1f} tokens/s ({many_s:.2f} s)   ratio {one_s / many_s:.2f}x (target >= 3x)")
    print(f"identical greedy outputs: {[r.text for r in one] == [r.text for r in many]}")
    print(f"generate_until whole process: lm-eval {le_wall:.2f} s, tunegate {tg_wall:.2f} s, ratio {tg_wall / le_wall:.3f}; "
          f"exact_match lm-eval {le_res['exact_match,none']:.4f} tunegate {em:.4f}")


def rerun(tmp: Path) -> None:
    wall, res, _ = run_tunegate(TASK, tmp / "tg_again", tmp / "store.sqlite")
    print("\n== 3. never pay twice ==")
    print(f"re-run, nothing changed: whole process {wall:.2f} s (target <= 5 s), model load {res['timing']['model_load_seconds']} s, "
          f"cache hits {res['timing']['cache_hits']}, misses {res['timing']['cache_misses']}")


def sweep(tmp: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.flows.evaluate import evaluate
    from harness.models import load_backend
    from harness.run.engine import EvalSettings

    adapters = []
    for i in range(3):
        torch.manual_seed(i)
        base = load_backend("smollm2-135m").model
        peft = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        adapters.append(tmp / f"sweep-lora-{i}")
        peft.save_pretrained(adapters[-1])
    start = time.perf_counter()
    results = evaluate("smollm2-135m", [str(a) for a in adapters], [str(TASK)], tmp / "sweep",
                       EvalSettings(progress=False), store_path=str(tmp / "sweep.sqlite"), include_base=True)
    total = time.perf_counter() - start
    phases = sum(r["timing"]["compute_seconds"] for r in results)
    print("\n== 4. adapter sweep (base + 3 LoRA adapters, base loaded once) ==")
    print(f"total {total:.2f} s, sum of the four scoring phases {phases:.2f} s, ratio {total / phases:.2f} (target <= 1.25)")


STOCK = ROOT / "tests" / "unit" / "lmeval_stock"


def _stock_rows() -> dict[str, dict[str, list[dict]]]:
    """Original rows in each dataset's layout, by task folder and split (deterministic)."""
    rng = random.Random(7)
    words = ["river", "stone", "light", "paper", "metal", "glass", "cloud", "seed", "salt", "wood", "ice", "sand"]

    def w(k: int = 3) -> str:
        return " ".join(rng.choice(words) for _ in range(k))

    arc = [{"id": f"q{i}", "question": f"What does {w()} become when heated?", "answerKey": "ABCD"[i % 4],
            "choices": {"text": [w(2) for _ in range(4)], "label": list("ABCD")}} for i in range(8)]
    boolq = [{"passage": f"The {w()} is {w(2)}.", "question": f"is the {w(2)} {w(1)}", "label": i % 2, "idx": i}
             for i in range(8)]
    sciq = [{"question": f"What makes {w(2)}?", "distractor1": w(1), "distractor2": w(2), "distractor3": w(1),
             "correct_answer": w(2), "support": f"  {w(6)}."} for _ in range(8)]
    piqa = [{"goal": f"How to clean {w(2)}", "sol1": f"use {w(2)}", "sol2": f"use {w(3)}", "label": i % 2}
            for i in range(8)]
    tqa = [{"question": f"Is {w(2)} {w(1)}?", "mc1_targets": {"choices": [w(3), w(2), w(4)], "labels": [1, 0, 0]},
            "mc2_targets": {"choices": [w(3)], "labels": [1]}} for _ in range(8)]
    hella = [{"ind": i, "activity_label": w(1).title(), "ctx_a": f"A person holds {w(2)}.", "ctx_b": f"they {w(1)}",
              "ctx": "", "endings": [f"{w(3)} [title] {w(1)}." for _ in range(4)], "source_id": f"s{i}",
              "split": "val", "split_type": "indomain", "label": str(i % 4)} for i in range(8)]
    wino = [{"sentence": f"The {w(1)} beat the {w(1)} because the _ was {w(1)}.", "option1": w(1), "option2": w(1),
             "answer": "12"[i % 2]} for i in range(8)]
    mmlu = {split: [{"question": f" What is {w(3)}? ", "subject": "anatomy", "choices": [w(2) for _ in range(4)],
                     "answer": i % 4} for i in range(n)] for split, n in (("test", 8), ("dev", 5))}
    gsm = {split: [{"question": f"Ann has {a} {w(1)}s and gets {b} more. How many?",
                    "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}
                   for a, b in ((rng.randint(2, 40), rng.randint(2, 40)) for _ in range(n))]
           for split, n in (("train", 8), ("test", 2))}
    return {"arc_easy": {"test": arc}, "boolq": {"validation": boolq}, "sciq": {"test": sciq},
            "piqa": {"validation": piqa}, "truthfulqa": {"validation": tqa}, "hellaswag": {"validation": hella},
            "winogrande": {"validation": wino}, "mmlu": {f"anatomy_{k}": v for k, v in mmlu.items()},
            "gsm8k": gsm}


STOCK_TASKS = [("arc_easy", "arc_easy.yaml"), ("boolq", "default.yaml"), ("sciq", "sciq.yaml"), ("piqa", "piqa.yaml"),
               ("truthfulqa", "truthfulqa_mc1.yaml"), ("hellaswag", "hellaswag.yaml"),
               ("winogrande", "default.yaml"), ("mmlu", "mmlu_anatomy.yaml"), ("gsm8k", "gsm8k.yaml")]


def stock_tasks(tmp: Path) -> None:
    """Both tools on copies of stock lm-eval task files; equality per metric and per-choice loglikelihoods."""
    root = tmp / "stock"
    files, names = [], []
    for folder, (name, file) in zip(_stock_rows(), STOCK_TASKS, strict=True):
        dest = root / folder
        shutil.copytree(STOCK / name, dest)
        splits = _stock_rows()[folder]
        for split, rows in splits.items():
            (dest / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for yaml_file in [*dest.glob("*.yaml"), *dest.glob("*_yaml")]:
            # lm-eval (datasets) resolves data files against the working directory and needs every declared
            # split to exist: name them absolutely, and give unused splits the evaluated rows
            text = yaml_file.read_text()
            for declared in set(re.findall(r"^\s+\w+: (\S+\.jsonl)$", text, re.M)):
                if not (dest / declared).exists():
                    shutil.copy(dest / f"{next(iter(splits))}.jsonl", dest / declared)
                text = text.replace(f": {declared}\n", f": {dest / declared}\n")
            yaml_file.write_text(text)
        path = dest / file
        text = path.read_text()
        task = re.search(r'^"?task"?: "?([A-Za-z0-9_]+)"?$', text, re.M)
        assert task, path
        # a name lm-eval does not ship, so --include_path cannot resolve to its own copy of the task
        path.write_text(text.replace(task.group(0), f"task: tgbench_{task.group(1)}"))
        files.append(path)
        names.append(f"tgbench_{task.group(1)}")
    lm_eval = os.environ.get("LM_EVAL", str(BIN / "lm_eval"))
    le_wall, _ = timed([lm_eval, "--model", "hf", "--model_args", f"pretrained={model_dir()},dtype=float32",
                        "--tasks", ",".join(names), "--include_path", str(root), "--batch_size", "16",
                        "--device", "cpu", "--log_samples", "--output_path", str(tmp / "le_stock")],
                       env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    le_results = json.loads(sorted((tmp / "le_stock").rglob("results_*.json"))[-1].read_text())["results"]
    refs = [a for f in files for a in ("-s", str(f))]
    tg_wall, _ = timed([sys.executable, "-m", "harness.cli", "eval", "-q", *refs, "--trust-task-code", str(root),
                        "--store", str(tmp / "stock.sqlite"), "--out", str(tmp / "tg_stock")],
                       env={"PYTHONPATH": str(ROOT)})
    tg = json.loads((tmp / "tg_stock" / "results.json").read_text())["suites"]
    tg_samples = [json.loads(line) for line in (tmp / "tg_stock" / "samples.jsonl").read_text().splitlines()]
    print("\n== 5. stock lm-eval task files (local data, both tools, same model) ==")
    equal, compared, diffs = 0, 0, []
    for name in names:
        le = le_results[name]
        for suite in tg.values():
            for task_name, task in suite["tasks"].items():
                if task_name != name and not task_name.startswith(name + "."):
                    continue
                flt = task_name[len(name) + 1:] or "none"
                for ours, theirs in (("acc", "acc"), ("acc_norm", "acc_norm"), ("exact_match_strict", "exact_match")):
                    key = f"{theirs},{flt}"
                    if ours in task["metrics"] and key in le:
                        a, b = task["metrics"][ours]["value"], le[key]
                        compared += 1
                        equal += abs(a - b) < 1e-9
                        print(f"{task_name:<34} {theirs:<12} lm-eval {b:.4f}  tunegate {a:.4f}  "
                              f"{'equal' if abs(a - b) < 1e-9 else 'DIFFERENT'}")
        sample_file = sorted((tmp / "le_stock").rglob(f"samples_{name}_*.jsonl"))
        if sample_file and "acc,none" in le:
            theirs_ll = {s["doc_id"]: [float(r[0][0]) for r in s["resps"]]
                         for s in map(json.loads, sample_file[-1].read_text().splitlines())}
            ours_rows = [s for s in tg_samples if s.get("task") == name]
            for i, s in enumerate(ours_rows):
                diffs += [abs(a - b) for a, b in zip(s["logliks"], theirs_ll[i], strict=True)]
    print(f"whole process: lm-eval {le_wall:.1f} s, tunegate {tg_wall:.1f} s")
    print(f"RESULT stock lm-eval tasks: {equal}/{compared} metrics equal to lm-eval 0.4.13; per-choice loglik "
          f"max |diff| {max(diffs) if diffs else float('nan'):.2e} over {len(diffs)} choices (target < 1e-4)")


WORDS = ("cell", "tissue", "nerve", "muscle", "bone", "artery", "vein", "organ", "membrane", "protein", "enzyme",
         "hormone", "signal", "pressure", "volume", "layer", "surface", "joint", "fibre", "gland", "blood", "lung",
         "heart", "kidney", "liver", "skin", "brain", "spinal", "upper", "lower", "inner", "outer", "left", "right",
         "primary", "secondary", "rapid", "slow", "dense", "thin", "normal", "reduced", "increased", "chronic")


def _mmlu_rows(n: int, rng: random.Random) -> list[dict]:
    """Original rows in MMLU's layout, with MMLU-like lengths (a 25-40 word question, 2-6 word choices)."""
    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    return [{"question": f"Which of the following best explains why the {words(rng.randint(20, 35))} "
                         f"when the {words(3)} is {words(2)}?",
             "subject": "anatomy", "choices": [words(rng.randint(2, 6)) for _ in range(4)], "answer": rng.randrange(4)}
            for _ in range(n)]


def fewshot_mc(tmp: Path, questions: int) -> None:
    """lm-eval's MMLU template with 5 shots: both tools as whole processes; tunegate with and without reuse."""
    folder = tmp / "mmlu5"
    folder.mkdir()
    shutil.copy(STOCK / "mmlu" / "_default_template_yaml", folder)
    rng = random.Random(11)
    for split, n in (("dev", 5), ("test", questions)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _mmlu_rows(n, rng)))
    task = folder / "tgbench_mmlu5.yaml"
    task.write_text('"dataset_name": "anatomy"\n'
                    '"description": "The following are multiple choice questions (with answers) about anatomy.\\n\\n"\n'
                    '"include": "_default_template_yaml"\n"task": "tgbench_mmlu5"\nnum_fewshot: 5\n'
                    f"dataset_kwargs:\n  data_files:\n    test: {folder / 'test.jsonl'}\n    dev: {folder / 'dev.jsonl'}\n")
    lm_eval = os.environ.get("LM_EVAL", str(BIN / "lm_eval"))
    le_wall, _ = timed([lm_eval, "--model", "hf", "--model_args", f"pretrained={model_dir()},dtype=float32",
                        "--tasks", task.stem, "--include_path", str(folder), "--batch_size", "16", "--device", "cpu",
                        "--log_samples", "--output_path", str(tmp / "le_mmlu5")],
                       env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    le_acc = json.loads(sorted((tmp / "le_mmlu5").rglob("results_*.json"))[-1].read_text())["results"][task.stem]["acc,none"]
    le_samples = map(json.loads, sorted((tmp / "le_mmlu5").rglob(f"samples_{task.stem}_*.jsonl"))[-1].read_text().splitlines())
    theirs = {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in le_samples}
    runs = {}
    for label, extra in (("shared", []), ("unshared", ["--no-share-prefix"])):
        out = tmp / f"tg_mmlu5_{label}"
        wall, _ = timed([sys.executable, "-m", "harness.cli", "eval", "-q", "-s", str(task), *extra,
                         "--store", str(tmp / f"mmlu5_{label}.sqlite"), "--out", str(out)], env={"PYTHONPATH": str(ROOT)})
        result = json.loads((out / "results.json").read_text())
        samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        runs[label] = (wall, result["suites"][task.stem]["tasks"][task.stem]["metrics"]["acc"]["value"],
                       [s["logliks"] for s in samples], result["timing"]["tokens_processed"])
    print(f"\n== 6. 5-shot multiple choice, MMLU's shape ({questions} questions x 4 choices, one fixed 5-shot block) ==")
    print(f"lm-eval whole process                      {le_wall:7.2f} s   acc {le_acc:.4f}")
    diffs = {}
    for label, (wall, acc, logliks, tokens) in runs.items():
        diffs[label] = [abs(a - b) for i, row in enumerate(logliks) for a, b in zip(row, theirs[i], strict=True)]
        print(f"tunegate {label:<8} whole process          {wall:7.2f} s   acc {acc:.4f}   ratio to lm-eval "
              f"{wall / le_wall:.3f}   {tokens} tokens run   per-choice loglik max |diff| {max(diffs[label]):.2e}")
    between = max(abs(a - b) for x, y in zip(runs["shared"][2], runs["unshared"][2], strict=True)
                  for a, b in zip(x, y, strict=True))
    print(f"tunegate shared vs unshared                per-choice loglik max |diff| {between:.2e}")
    wall, acc = runs["shared"][0], runs["shared"][1]
    print(f"RESULT 5-shot MC: tunegate/lm-eval whole process {wall / le_wall:.3f} ({wall:.1f} s / {le_wall:.1f} s, "
          f"goal <= 0.25); per-choice loglik max |diff| {max(diffs['shared']):.2e} over {len(diffs['shared'])} "
          f"choices (target < 1e-4); acc {'equal' if abs(acc - le_acc) < 1e-9 else 'DIFFERENT'}")


def main() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with tempfile.TemporaryDirectory(prefix="tunegate-bench-") as tmp:
        if only in (None, "stock"):
            stock_tasks(Path(tmp))
        if only in (None, "fewshot"):
            questions = int(sys.argv[sys.argv.index("--questions") + 1]) if "--questions" in sys.argv else 100
            fewshot_mc(Path(tmp), questions)
        if only is None:
            multiple_choice(Path(tmp))
            generation(Path(tmp))
            rerun(Path(tmp))
            sweep(Path(tmp))


if __name__ == "__main__":
    main()
