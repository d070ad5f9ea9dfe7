"""answer_only: the reply is the asked answer format (one word), right or wrong."""

from __future__ import annotations

from harness.data.suite import load_suite
from harness.scoring.metrics import ScoreInput, score_sample


def test_answer_only_is_the_asked_format_right_or_wrong():
    task = next(t for t in load_suite("medical").tasks if t.name == "pubmedqa_gen").spec
    from harness.scoring.metrics import extract_answer

    def score(reply: str, target: str = "yes") -> float:
        inp = ScoreInput(target=target, prediction=extract_answer(reply, task.extraction), response=reply, task=task)
        return score_sample(["answer_only", "exact_match"], inp)
    assert score("yes") == {"answer_only": 1.0, "exact_match": 1.0}
    assert score(" No.") == {"answer_only": 1.0, "exact_match": 0.0}  # the format, wrong answer
    assert score("yes, no") == {"answer_only": 0.0, "exact_match": 1.0}  # right first word, not the format
    assert score("I cannot say")["answer_only"] == 0.0  # nothing extracted
    plain = ScoreInput(target="x", prediction="x", response="x", task=None)
    assert score_sample(["answer_only"], plain).get("answer_only") is None  # no extraction declared: no value


def test_the_headline_stays_the_first_declared_metric_when_the_baseline_lists_none():
    """The demo's shared base starts with no answers, so its results list no metrics for a task: the headline
    (what a rule without `metric` judges) comes from the candidate's order, not the alphabet."""
    from harness.decide.compare import metric_names

    empty, cand = {"metrics": {}}, {"metrics": {"exact_match": {}, "answer_only": {}}}
    samples = [{"scores": {"answer_only": 1.0, "exact_match": 0.0}}]
    assert metric_names([empty, cand], samples)[0] == ["exact_match", "answer_only"]
    assert metric_names([{"metrics": {"b": {}}}, {"metrics": {"a": {}, "b": {}}}], [])[0] == ["b", "a"]
