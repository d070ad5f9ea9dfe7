"""The built-in judged medical task end to end on the embedded model (issue 27): the base and the base with
a LoRA adapter answer `medical/pubmedqa_explain` (its prompt, data, rubric and judge block; generation cut to
24 tokens to keep the test short), the suite's judge role grades both, people rate most of the same responses
in the review store (queued with only the judged items), and the report shows the judge's agreement with
people and the prediction-powered human-scale Δ; the gate's rules name their method.

The role is bound to a scripted judge that always answers in format: the embedded 135M judge leaves about
half its answers unparseable (tests/integration/test_judge_embedded.py exercises it), and PPI needs at least
10 items the judge graded in both runs. The test checks the mechanism, not the figures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.core.api import Request, Response
from harness.data.suite import load_suite
from harness.inference.ppi import METHOD
from harness.models import register_backend
from harness.models.fake import FakeBackend
from harness.review.queue import build_queue
from harness.storage.review import ReviewDB
from tests.integration.test_until_decided_embedded import _broken_adapter

pytestmark = pytest.mark.slow
N, RATED = 12, 10


class ScriptedJudge(FakeBackend):
    """Always answers the rubric in format: a score from 1 to 5 drawn from a hash of what it grades."""

    def generate(self, requests: list[Request]) -> list[Response]:
        return [Response(text=f" {1 + int(self._digest(r.context)[:6], 16) % 5}", n_tokens=[1]) for r in requests]


register_backend("scripted", lambda rest, **_: ScriptedJudge(model=rest or "judge"))


def _explain_suite(tmp: Path) -> Path:
    """The built-in medical suite cut to its judged task (same data, prompt, rubric and judge block)."""
    src = Path(load_suite("medical").path)
    raw = yaml.safe_load(src.read_text())
    raw["tasks"] = [t for t in raw["tasks"] if t["name"] == "pubmedqa_explain"]
    assert raw["tasks"] and raw["tasks"][0]["judge"]["suggested_model"] == "smollm2-135m"
    raw["tasks"][0]["generation"]["max_new_tokens"] = 24
    folder = tmp / "medical"
    (folder / "data").mkdir(parents=True)
    for rel in raw["tasks"][0]["data"].values():
        (folder / rel).write_text((src.parent / rel).read_text())
    (folder / "suite.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_judged_medical_task_with_people_agreement_and_ppi_in_the_report(tmp_path: Path) -> None:
    suite, store = _explain_suite(tmp_path), tmp_path / "store.db"
    adapter = _broken_adapter(tmp_path / "adapters" / "cand")
    sweep = tmp_path / "sweep"
    assert main(["eval", "-m", "smollm2-135m", "-a", str(adapter), "--include-base", "-s", str(suite), "--limit",
                 str(N), "--out", str(sweep), "--store", str(store), "-q", "--judge", "grader=scripted:judge"]) == 0
    base, cand = sweep / "base", sweep / "cand"
    results = json.loads((base / "results.json").read_text())
    assert results["judges"]["grader"]["spec"] == "scripted:judge"
    assert json.loads((cand / "results.json").read_text())["model"]["adapter_check"]["active"] is True
    assert results["suites"]["medical"]["tasks"]["pubmedqa_explain"]["metrics"]["judge_unparsed"]["n"] == N

    db = ReviewDB(store)  # one person rates the first RATED items of both runs and skips the rest
    try:
        queue = build_queue([base, cand], mode="rating", reviewers_per_item=1, db=db, only_judged=True)
        assert len(queue.items) == 2 * N
        order = sorted({it.sample_id for it in queue.items})
        rated = set(order[:RATED])
        rng = random.Random(0)
        while (found := db.next_for(queue.queue_id, "ann", rng)) is not None:
            item, _ = found
            is_base = item.models[0]["run_id"] == results["run_id"]
            ratings = {"factuality": rng.randint(3, 5) if is_base else rng.randint(1, 3)} \
                if item.sample_id in rated else None
            db.add_judgment(item.item_id, "ann", choice=None, ratings=ratings, comment=None)
    finally:
        db.close()

    md = tmp_path / "report.md"
    assert main(["report", str(base), str(cand), "--md", str(md), "--store", str(store)]) == 0
    text = md.read_text()
    assert "### Judge against people" in text and "### Human-scale Δ, prediction-powered" in text
    assert f"| {RATED} | {N - RATED} |" in text and METHOD in text

    gate = tmp_path / "gate.yaml"
    gate.write_text("rules:\n"
                    "  - {name: agreement, suite: medical, task: pubmedqa_explain, metric: judge_score, "
                    "non_inferiority: 0.05, min_human_agreement: 0.6}\n"
                    "  - {name: ppi, suite: medical, task: pubmedqa_explain, metric: judge_score, "
                    "non_inferiority: 0.05, ppi: true}\n")
    main(["gate", str(gate), "--baseline", str(base), "--candidate", str(cand), "--store", str(store),
          "--verdict", str(tmp_path / "v.json")])
    rules = {r["name"]: r for r in json.loads((tmp_path / "v.json").read_text())["rules"]}
    assert "judge–human" in rules["agreement"]["detail"]
    assert rules["ppi"]["method"] == METHOD
    assert f"{RATED} items rated in both runs and {N - RATED} judged only" in rules["ppi"]["detail"]
