"""One line per built-in metric, for `tunegate metrics list` and docs/suite-reference.md.

A test checks that every built-in metric has a line here, so the list and the reference cannot fall behind
the registry; a metric registered by an extension shows its facts without a line.
"""

from __future__ import annotations

from harness.scoring.metrics import REGISTRY, Metric

DESCRIPTIONS: dict[str, str] = {
    "acc": "the most likely choice (summed loglikelihood) is the gold one",
    "acc_norm": "as acc, each choice's loglikelihood divided by its length in characters (lm-eval's acc_norm)",
    "acc_bytes": "as acc, normalised by each choice's UTF-8 length in bytes (lm-eval's acc_bytes)",
    "acc_norm_token": "as acc, normalised by each choice's length in tokens",
    "exact_match": "the extracted answer equals a reference, after case, punctuation, articles and spacing",
    "exact_match_strict": "lm-eval's exact_match: equal after only the task file's own normalisation options",
    "answer_only": "the reply is the extracted answer and nothing else (the asked format, right or wrong)",
    "bleu": "corpus BLEU (sacrebleu), on 0–100",
    "chrf": "corpus chrF (sacrebleu), on 0–100",
    "ter": "corpus translation edit rate (sacrebleu TER), edits per 100 reference words",
    "rouge1": "ROUGE-1 F-measure against the best reference (rouge-score, stemmed)",
    "rouge2": "ROUGE-2 F-measure against the best reference (rouge-score, stemmed)",
    "rougeL": "ROUGE-L F-measure against the best reference (rouge-score, stemmed)",
    "token_perplexity": "exp of the negative loglikelihood per token",
    "word_perplexity": "exp of the negative loglikelihood per word (lm-eval's word_perplexity)",
    "byte_perplexity": "exp of the negative loglikelihood per UTF-8 byte",
    "bits_per_byte": "negative loglikelihood per byte, in bits",
    "rubric_pass": "the response shows the behaviour the row expects (answer, refuse, abstain) under the task's rubric",
    "refusal_rate": "the response refuses (the rubric's refusal patterns); over-refusal where declared lower-is-better",
    "safe_refusal": "the response refuses and carries no actionable content (a referral that still gives the "
                    "method does not count)",
    "harmful_compliance": "the reply to a harmful request carries actionable content (forbidden patterns, the "
                          "row's must_not_contain, or procedural markers)",
    "abstention_rate": "the response abstains (says it cannot know)",
    "selective_accuracy": "accuracy over answered items only; answering an item that calls for abstaining is wrong",
    "appropriate_abstention": "abstained exactly when the row expects an abstention",
    "injection_resisted": "the response contains none of the row's or rubric's forbidden patterns",
    "contains_answer": "the normalised reference occurs in the response, or an accept pattern matches",
    "judge_score": "a judge model's score of the response, scaled to 0–1 (a task's judge: block)",
    "judge_unparsed": "the judge's answer could not be parsed",
    "judge_injection": "the response tried to instruct the judge (flagged)",
}
for _k in (1, 2, 3, 4, 5, 10, 20, 50, 100):
    DESCRIPTIONS[f"pass@{_k}"] = (f"chance that at least one of {_k} sampled programs passes the tests (unbiased "
                                  "estimator, Chen et al. 2021), mean over problems")


def level(metric: Metric) -> str:
    """Per-sample (a mean over items, paired per item) or corpus-level (no paired test)."""
    return "per sample" if metric.sample is not None else "corpus"


def value_range(metric: Metric) -> str:
    if metric.sample is None:
        return "0–100" if metric.name in ("bleu", "chrf") else "≥ 0 (edits per 100 words)" if metric.name == "ter" else ("≥ 0" if metric.bounds is None else "0–1")
    return "unbounded" if metric.bounds is None else f"{metric.bounds[0]:g}–{metric.bounds[1]:g}"


def is_builtin(metric: Metric) -> bool:
    """Registered by tunegate itself (not by an extension): what the checked-in reference lists."""
    fn = metric.sample or metric.corpus_stats or metric.corpus
    return getattr(fn, "__module__", "").startswith("harness.")


def metric_rows(builtin_only: bool = False) -> list[dict[str, str]]:
    """Every registered metric: name, task kinds, direction, level, range and what it measures."""
    return [{"name": name, "kinds": ", ".join(m.kinds), "direction": "↑ higher" if m.higher_is_better else "↓ lower",
             "level": level(m), "range": value_range(m), "what": DESCRIPTIONS.get(name, "")}
            for name, m in sorted(REGISTRY.items(), key=lambda kv: (kv[1].kinds, kv[0]))
            if not builtin_only or is_builtin(m)]
