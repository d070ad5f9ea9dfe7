"""Extension points used from outside harness/: a backend, a task kind and a metric, registered by this
module through the public API (as a plugin would) and used end to end by `tunegate eval`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.cli import main
from harness.core.api import Backend, Request, Response, SampleRecord
from harness.data.suite import Sample, Task
from harness.models import register_backend
from harness.scoring import metrics
from harness.scoring.kinds import register_kind
from harness.scoring.kinds.base import Answered, PerSampleKind, ScoreContext
from tests.conftest import write_suite


@dataclass
class EchoBackend(Backend):
    """Replies with the last word of the prompt's first line, shouted."""

    name: ClassVar[str] = "echo"
    capabilities = frozenset({"generate"})
    spec: str = ""
    seen: list[Request] = field(default_factory=list)

    @classmethod
    def from_spec(cls, rest: str, **options: Any) -> EchoBackend:
        return cls(rest)

    @property
    def label(self) -> str:
        return f"echo:{self.spec}"

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "echo", "model": self.spec}

    def generate(self, requests: list[Request]) -> list[Response]:
        self.seen += requests
        word = str.lower if self.spec == "whisper" else str.upper  # `echo:whisper` forgets to shout
        return [Response(text=word(r.context.splitlines()[0].split()[-1]), tokens_processed=len(r.context.split()))
                for r in requests]


class Shout(PerSampleKind):
    """Asks for the answer in capitals; the record keeps the word count of the reply."""

    name = "shout"
    needs = frozenset({"generate"})
    required = {"target": "a target"}

    def make_requests(self, task: Task, sample: Sample, prompt: str) -> list[Request]:
        return [Request("generate", prompt + "\nShout it:")]

    def score_one(self, ctx: ScoreContext, item: Answered) -> SampleRecord:
        text = item.responses[0].text or ""
        inp = metrics.ScoreInput(target=item.sample.target, response=text, task=ctx.task.spec)
        return ctx.record(item, text, metrics.score_sample(ctx.task.spec.metrics, inp), {"words": len(text.split())})


register_backend("echo", EchoBackend.from_spec)
register_kind("shout", Shout())
metrics.register(metrics.Metric("shouted_answer", ("shout",),
                                sample=lambda s: float(s.response == str(s.target).upper())))
metrics.register(metrics.Metric("shout_length", ("shout",), sample=lambda s: float(len(s.response or "")),
                                higher_is_better=False))

TASK = """  - name: capitals
    kind: shout
    data: {test: data/rows.jsonl}
    prompt: "The capital of {{ country }} is {{ city }}"
    target: city
    chat_template: false
    metrics: [shouted_answer, shout_length]
"""
ROWS = [{"country": "France", "city": "Paris"}, {"country": "Italy", "city": "Rome"},
        {"country": "Spain", "city": "madrid"}]


def test_a_new_backend_kind_and_metric_run_end_to_end(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", TASK, {"data/rows.jsonl": ROWS}, name="plugin")
    out = tmp_path / "run"
    assert main(["eval", "-q", "-m", "echo:v1", "-s", str(suite), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    task = results["suites"]["plugin"]["tasks"]["capitals"]
    assert results["model"]["fingerprint"] == {"backend": "echo", "model": "v1"}
    assert task["kind"] == "shout" and task["n"] == 3
    assert task["metrics"]["shouted_answer"]["value"] == 1.0 and task["metrics"]["shouted_answer"]["higher_is_better"]
    assert task["metrics"]["shout_length"]["higher_is_better"] is False
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["response"] for s in samples] == ["PARIS", "ROME", "MADRID"]
    assert all(s["extra"]["words"] == 1 for s in samples)
    assert results["timing"]["tokens_processed"] > 0


def test_the_new_kind_is_refused_on_a_backend_without_generate(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", TASK, {"data/rows.jsonl": ROWS}, name="plugin")
    code = main(["eval", "-q", "-m", "fake:scorer?caps=loglikelihood", "-s", str(suite), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "plugin/capitals (shout) needs generate" in err and "fake:scorer" in err
    assert not (tmp_path / "o").exists()


GATE = """version: 1
rules:
  - name: shouting no worse than the base
    suite: plugin
    task: capitals
    metric: shouted_answer
    non_inferiority: 0.15
"""


def test_the_gate_judges_a_registered_metric(tmp_path: Path) -> None:
    rows = [{"country": f"Country{i}", "city": f"City{i}"} for i in range(40)]
    suite = write_suite(tmp_path / "suite", TASK, {"data/rows.jsonl": rows}, name="plugin")
    for spec, out in (("echo:v1", "base"), ("echo:v1", "same"), ("echo:whisper", "worse")):
        assert main(["eval", "-q", "-m", spec, "-s", str(suite), "--out", str(tmp_path / out)]) == 0
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    judge = ["gate", str(gate), "--baseline", str(tmp_path / "base"), "--candidate"]
    assert main([*judge, str(tmp_path / "worse")]) == 1  # 40 of 40 items lost: FAIL
    assert main([*judge, str(tmp_path / "same")]) == 0  # identical answers: 40 items show Δ > -0.11
    verdict = json.loads((tmp_path / "same" / "verdict.json").read_text())
    [rule] = verdict["rules"]
    assert rule["verdict"] == "PASS" and rule["n"] == 40
