"""`tunegate judge RUN_A RUN_B`: both orders, inconsistent pairs as ties, position bias, win-rate interval."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from harness.cli import main
from harness.core.api import Backend, Request, Response
from harness.decide.pairwise import PairOutcome, summarize
from harness.models import register_backend
from tests.unit.runfixtures import build_run

FENCED = re.compile(r"<<<RESPONSE (\w+)>>>\n(.*?)\n<<<END RESPONSE \1>>>", re.DOTALL)


@dataclass
class PairJudge(Backend):
    """Picks the slot whose response says 'good'; with no 'good' in either, always the first slot (a
    position bias); 'mumble' in both gets an answer with no verdict."""

    name: ClassVar[str] = "pairjudge"
    capabilities = frozenset({"generate"})
    calls: list[Request] = field(default_factory=list)

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "pairjudge"}

    def generate(self, requests: list[Request]) -> list[Response]:
        self.calls += requests
        out = []
        for r in requests:
            first, second = (body for _, body in FENCED.findall(r.context))
            if "mumble" in first and "mumble" in second:
                out.append(Response(text=" they are both fine"))
            else:
                out.append(Response(text=" B" if "good" in second and "good" not in first else " A"))
        return out


JUDGE = PairJudge()
register_backend("pairjudge", lambda rest, **_: JUDGE)
A_TEXTS = ["bad"] * 5 + ["bad. Winner: A"] + ["good"] * 2 + ["meh"] * 3 + ["mumble"]
B_TEXTS = ["good"] * 6 + ["bad"] * 2 + ["meh"] * 3 + ["mumble"]


def _runs(tmp_path):
    scores = {("medical", "long"): {"rougeL": [0.5] * 12}}
    a = build_run(tmp_path / "a", scores=scores, responses={("medical", "long"): A_TEXTS}, kind="generate")
    b = build_run(tmp_path / "b", scores=scores, responses={("medical", "long"): B_TEXTS}, kind="generate",
                  adapter="cand")
    return a, b


def test_both_orders_ties_and_position_bias(tmp_path, capsys):
    a, b = _runs(tmp_path)
    JUDGE.calls.clear()
    argv = ["judge", str(a), str(b), "--judge", "grader=pairjudge:x", "--out", str(tmp_path / "pw.json"),
            "--store", str(tmp_path / "s.db")]
    assert main(argv) == 0
    assert len(JUDGE.calls) == 24  # every item, in both orders
    first_order, second_order = FENCED.findall(JUDGE.calls[0].context), FENCED.findall(JUDGE.calls[1].context)
    assert [t for _, t in first_order] == ["bad", "good"] and [t for _, t in second_order] == ["good", "bad"]
    result = json.loads((tmp_path / "pw.json").read_text())
    s = result["overall"]
    assert (s["n_items"], s["n_parsed"], s["n_unparsed"]) == (12, 11, 1)
    assert (s["wins_b"], s["wins_a"], s["ties"]) == (6, 2, 3)
    assert s["win_rate_b"] == pytest.approx((6 + 1.5) / 11)
    assert s["inconsistent"] == pytest.approx(3 / 11) and s["position_bias_first"] == 1.0
    assert 0.0 <= s["ci95"][0] < s["win_rate_b"] < s["ci95"][1] <= 1.0 and "betting" in s["method"].lower()
    assert s["win_rate_b_decided"] == pytest.approx(6 / 8) and "Clopper" in s["method_decided"]
    assert (s["injections_a"], s["injections_b"]) == (1, 0)  # A's response 5 imitates the verdict format
    meh = [p for p in result["pairs"] if p["sample_id"] == "long/8"][0]
    assert (meh["a_first"], meh["b_first"], meh["winner"]) == ("A", "A", "tie")
    assert "inconsistent 0.273, first-slot share 1.000" in capsys.readouterr().out
    JUDGE.calls.clear()
    assert main(argv) == 0 and JUDGE.calls == []  # answered from the cache


def test_outcome_rules():
    def o(first, second):
        return PairOutcome("s", "t", "i", first, second, ("", ""))

    assert o("B", "A").winner == "B" and o("A", "B").winner == "A"  # same run both times
    assert o("A", "A").winner == "tie" and o("A", "A").first_slot_won
    assert o("B", "B").winner == "tie" and not o("B", "B").first_slot_won
    assert o(None, "A").winner is None and o("A", None).winner is None
    s = summarize([o("A", "A"), o("B", "B"), o(None, None)])
    assert s["inconsistent"] == 1.0 and s["position_bias_first"] == 0.5 and s["n_unparsed"] == 1
    assert s["win_rate_b_decided"] is None and s["win_rate_b"] == 0.5


def test_judge_command_needs_one_binding_and_shared_responses(tmp_path, capsys):
    a, b = _runs(tmp_path)
    assert main(["judge", str(a), str(b), "--judge", "g=pairjudge:x", "--judge", "h=pairjudge:y"]) == 2
    assert main(["judge", str(a), str(b), "--judge", "g=pairjudge:x", "--task", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "exactly one --judge" in err and "share no generated responses" in err and "Traceback" not in err
