"""Issue 23: no corner of the gate or of `--until-decided` passes what the data cannot show.

One test (or more) per defect, each built from the issue's reproduction, through the CLI where one exists."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import gammaln

from harness.cli import main
from harness.core.api import Request, Response
from harness.data.suite import load_suite
from harness.decide.gate import Check
from harness.flows.until import UntilSettings, decide_chance, futile, run_until_decided
from harness.inference.evidence import paired_binary_gate_bounds, paired_binary_gate_interval
from harness.inference.stats import Interval
from harness.models.fake import FakeBackend
from harness.storage.store import Store
from tests.conftest import write_suite
from tests.unit.runfixtures import build_run, paired_binary


def _gate(tmp_path: Path, text: str, name: str = "gate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _gate_cli(tmp_path: Path, gate: str, base: Path, cand: Path, capsys) -> tuple[int, dict, str]:
    verdict_path = tmp_path / "verdict.json"
    verdict_path.unlink(missing_ok=True)
    code = main(["gate", str(_gate(tmp_path, gate)), "--baseline", str(base), "--candidate", str(cand),
                 "--verdict", str(verdict_path)])
    out = capsys.readouterr()
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else {}
    return code, verdict, out.out + out.err


# ---------------------------------------------------------------- 1. min_n and per-task chunks

N = 400
TWO_TASKS = "".join(f"""  - name: {t}
    kind: generate
    data: {{test: data/{t}.jsonl}}
    prompt: "{{{{ q }}}}"
    target: a
    chat_template: false
    generation: {{max_new_tokens: 4}}
    metrics: [exact_match]
""" for t in ("a", "b"))
ROWS = {t: [{"q": f"{t}: what is {i} + 1?", "a": str(i + 1)} for i in range(N)] for t in ("a", "b")}
SCRIPT = {r["q"]: r["a"] for rows in ROWS.values() for r in rows}


class WorseOnB(FakeBackend):
    """The base answers everything; the adapter is identical on task a and wrong on 15.5% of task b."""

    def generate(self, requests: list[Request]) -> list[Response]:
        out = super().generate(requests)
        if self.adapter is None:
            return out
        return [Response(text="no idea", n_tokens=[2], tokens_processed=2)
                if r.context.startswith("b:") and int(r.context.split()[3]) % 200 < 31 else o
                for r, o in zip(requests, out)]


def _until(tmp_path: Path, gate: Path, **kw):
    from harness.data.runs import load_run
    from harness.run.engine import EvalSettings, run_variant, write_run_dir

    suite = write_suite(tmp_path / "suite", TWO_TASKS, {f"data/{t}.jsonl": rows for t, rows in ROWS.items()})
    backend = WorseOnB(model="toy", script=SCRIPT)
    store = Store(None)
    try:
        results, records = run_variant(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                                       "fake:toy")
        write_run_dir(tmp_path / "base", results, records)
        (tmp_path / "worse").mkdir(exist_ok=True)
        outcome = run_until_decided(backend, [load_suite(str(suite))], store, EvalSettings(progress=False),
                                    UntilSettings(gate, str(tmp_path / "base"), **kw), "fake:toy",
                                    str(tmp_path / "worse"), load_run(tmp_path / "base"), tmp_path / "cand")
    finally:
        store.close()
    return outcome


@pytest.mark.parametrize("task_chunk", [{}, {"t/a": 100}])
def test_min_n_never_drops_a_task_because_the_loop_stopped(tmp_path: Path, capsys, task_chunk) -> None:
    """Task b is 15.5 points worse against a 0.1 margin: it must never be left out of a PASS because it had
    fewer than min_n items when task a was decided (the issue: PASS with b at n 20, or at -0.32 after one look
    when a took larger chunks)."""
    gate = _gate(tmp_path, "rules:\n  - {suite: t, non_inferiority: 0.1, min_n: 30}\n")
    outcome = _until(tmp_path, gate, chunk=10, task_chunk=task_chunk)
    assert outcome.gate.verdict != "PASS"
    (rule,) = outcome.gate.rules
    b = next(c for c in rule.checks if c.label == "b")
    assert b.verdict is not None and b.n >= 30  # judged, and fed until it had min_n items at least
    # the written sequential run gates the same way: not a PASS
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: t, non_inferiority: 0.1, min_n: 30}\n",
                                 tmp_path / "base", tmp_path / "cand", capsys)
    assert code != 0 and verdict["rules"][0]["verdict"] != "PASS"


def test_a_sequential_task_below_min_n_with_items_left_is_inconclusive_not_shown(tmp_path: Path, capsys) -> None:
    """`tunegate gate` on a sequential run: min_n reads the items the split holds, not those evaluated."""
    from tests.unit.test_gate_sequential import _make_sequential

    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": [1.0] * 100}, ("s", "u"): {"acc": [1.0] * 100}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"acc": [1.0] * 100}, ("s", "u"): {"acc": [0.0] * 100}},
                     adapter="cand")
    _make_sequential(cand, list(range(60)), task="t")
    from harness.decide.compare import prompt_sha

    results = json.loads((cand / "results.json").read_text())
    kept = [json.loads(x) for x in (cand / "samples.jsonl").read_text().splitlines()]
    # task u: only 5 of its 100 items evaluated (all regressions)
    rows = [json.loads(x) for x in (base / "samples.jsonl").read_text().splitlines() if '"task": "u"' in x][:5]
    for r in rows:
        r["scores"] = {"acc": 0.0}
    results["suites"]["s"]["tasks"]["u"]["n"] = 5
    results["sequential"]["available"]["s/u"] = 100
    results["sequential"]["items"] += [{"suite": "s", "task": "u", "sample_id": r["sample_id"],
                                        "prompt_hash": prompt_sha(r["prompt"])} for r in rows]
    (cand / "results.json").write_text(json.dumps(results))
    (cand / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in kept + rows))
    code, verdict, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.1, min_n: 30}\n", base, cand,
                                   capsys)
    assert code == 3, out
    u_check = next(c for c in verdict["rules"][0]["checks"] if c["unit"] == "u")
    assert u_check["verdict"] == "INCONCLUSIVE" and "not judged yet" in u_check["note"]


def test_a_task_under_min_n_in_a_complete_run_is_listed_as_left_out(tmp_path: Path, capsys) -> None:
    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": [1.0] * 200}, ("s", "u"): {"acc": [1.0] * 5}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"acc": [1.0] * 200}, ("s", "u"): {"acc": [0.0] * 5}},
                     adapter="cand")
    code, verdict, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.1, min_n: 30}\n", base, cand,
                                   capsys)
    assert code == 0, out  # the gate file exempts tasks with fewer than 30 items, and the verdict says which
    assert any(x.startswith("u (5 items < min_n 30") for x in verdict["rules"][0]["left_out"])


# ---------------------------------------------------------------- 2. futility


def test_futility_does_not_stop_a_first_look_of_ties() -> None:
    """One gain, one loss and eight ties in the first look of 1,000 items: the check can well be decided."""
    disc = (2 + 1) / (10 + 2)  # the gate's Laplace-smoothed discordance
    check = Check("t", "acc", "INCONCLUSIVE", 0.0, Interval(-0.5, 0.5, "cs", 10), 10, None, bounds=(-0.05,),
                  sd=math.sqrt(disc))
    assert not futile(check, 10, 1000)
    assert decide_chance(0.0, math.sqrt(disc), 10, 3000, (-0.05,)) > 0.5


def test_futility_stops_a_check_the_split_cannot_decide() -> None:
    # margin 0.01 at discordance 0.2, 300 of 400 items seen, estimate 0: deciding needs ~16,000 items
    check = Check("t", "acc", "INCONCLUSIVE", 0.0, Interval(-0.1, 0.1, "cs", 300), 300, None, bounds=(-0.01,),
                  sd=math.sqrt(0.2))
    assert futile(check, 300, 400)
    assert decide_chance(0.0, math.sqrt(0.2), 300, 400, (-0.01,)) < 0.05


def test_decide_chance_closed_form() -> None:
    """At n = n_full nothing is left to learn: the chance is 1 when the estimate ± z sd/√n clears the
    threshold and 0 otherwise; halfway, it is the normal predictive probability."""
    assert decide_chance(0.1, 0.3, 100, 100, (0.0,)) == 1.0  # 0.1 - 1.96 * 0.03 > 0
    assert decide_chance(0.01, 0.3, 100, 100, (0.0,)) == 0.0
    z = float(sps.norm.ppf(0.975))
    spread = math.sqrt(0.09 * 100 / (100 * 200))
    half = z * 0.3 / math.sqrt(200)
    want = sps.norm.sf((half - 0.02) / spread) + sps.norm.cdf((-half - 0.02) / spread)
    assert decide_chance(0.02, 0.3, 100, 200, (0.0,)) == pytest.approx(want)


# ---------------------------------------------------------------- 3. Holm with an undefined check


def _robust_runs(tmp_path: Path, with_undefined: bool) -> tuple[Path, Path]:
    scores = {("s", "t1"): {"acc": [1.0] * 100}, ("s", "t2"): {"acc": [1.0] * 100}}
    perturbed = {key: {"typo": {"acc": [0.0] * 35 + [1.0] * 65}} for key in scores}  # 35 drops of 100 each
    if with_undefined:  # a task whose clean score is at its worst: its robustness interval is undefined
        scores[("s", "t3")] = {"acc": [0.0] * 100}
        perturbed[("s", "t3")] = {"typo": {"acc": [0.0] * 100}}
    base = build_run(tmp_path / f"b{with_undefined}", scores=scores, perturbed=perturbed)
    cand = build_run(tmp_path / f"c{with_undefined}", scores=scores, perturbed=perturbed, adapter="cand")
    return base, cand


def test_an_undefined_task_enters_holm_as_p_1(tmp_path: Path, capsys) -> None:
    """Two tasks each failing at one-sided p 0.016 are INCONCLUSIVE after Holm; adding a third, undefined task must
    not make them FAIL unadjusted."""
    assert sps.binom.sf(34, 100, 0.25) == pytest.approx(0.0164, abs=1e-4)
    gate = "rules:\n  - {suite: s, max_robustness_drop: 0.25}\n"
    code, verdict, out = _gate_cli(tmp_path, gate, *_robust_runs(tmp_path, False), capsys)
    assert code == 3, out
    code, verdict, out = _gate_cli(tmp_path, gate, *_robust_runs(tmp_path, True), capsys)
    assert code == 3 and verdict["rules"][0]["verdict"] == "INCONCLUSIVE", out
    checks = {c["unit"]: c for c in verdict["rules"][0]["checks"]}
    assert checks["t3"]["interval"]["lo"] is None and checks["t3"]["p_fail"] == 1.0
    assert checks["t1"]["verdict"] == "INCONCLUSIVE" and "Holm-adjusted" in checks["t1"]["note"]


# ---------------------------------------------------------------- 4. pooling across directions


def _refusal_runs(tmp_path: Path) -> tuple[Path, Path]:
    lower = {("s", "benign"): {"refusal_rate"}}
    base = build_run(tmp_path / "b", scores={("s", "harmful"): {"refusal_rate": [1.0] * 50 + [0.0] * 50},
                                             ("s", "benign"): {"refusal_rate": [1.0] * 10 + [0.0] * 90}}, lower=lower)
    # harmful refusals up by 0.9; benign over-refusal up from 0.10 to 0.70 (worse): pooled, a "gain" of +0.30
    cand = build_run(tmp_path / "c", scores={("s", "harmful"): {"refusal_rate": [1.0] * 100},
                                             ("s", "benign"): {"refusal_rate": [1.0] * 70 + [0.0] * 30}},
                     lower=lower, adapter="cand")
    return base, cand


@pytest.mark.parametrize("rule", ["{suite: s, pool: micro, non_inferiority: 0.05}",
                                  "{suite: s, pool: micro, metric: refusal_rate, superiority: true}",
                                  "{suite: s, pool: macro, floor: 0.5}"])
def test_pooling_across_directions_is_bad_input(tmp_path: Path, capsys, rule: str) -> None:
    base, cand = _refusal_runs(tmp_path)
    code, _, out = _gate_cli(tmp_path, f"rules:\n  - {rule}\n", base, cand, capsys)
    assert code == 2 and "Traceback" not in out
    assert "harmful" in out and "benign" in out and "direction" in out
    # per task it is judged, and the benign over-refusal fails
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.05}\n", base, cand, capsys)
    assert code == 1 and {c["unit"]: c["verdict"] for c in verdict["rules"][0]["checks"]}["benign"] == "FAIL"


def test_compare_shows_no_pooled_row_across_directions(tmp_path: Path, capsys) -> None:
    base, cand = _refusal_runs(tmp_path)
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr().out
    assert "no pooled refusal_rate row" in out and "+0.300" not in out


# ---------------------------------------------------------------- 5. superiority by min_effect


def test_superiority_fails_when_the_effect_is_confidently_below_min_effect(tmp_path: Path, capsys) -> None:
    base_s, cand_s = paired_binary(20_000, 10_000, 0, 400)
    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": base_s}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"acc": cand_s}}, adapter="cand")
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, superiority: true, min_effect: 0.05}\n", base, cand,
                                 capsys)
    rule = verdict["rules"][0]
    assert code == 1 and rule["verdict"] == "FAIL"
    assert 0.015 < rule["interval"]["lo"] < rule["interval"]["hi"] < 0.025
    # the same data pass superiority with min_effect 0 and 0.01, and are inconclusive at 0.02 (inside the interval)
    for effect, want in ((0, 0), (0.01, 0), (0.02, 3)):
        code, _, _ = _gate_cli(tmp_path, f"rules:\n  - {{suite: s, superiority: true, min_effect: {effect}}}\n",
                               base, cand, capsys)
        assert code == want, effect


# ---------------------------------------------------------------- 6. the FAIL side of the paired interval


def _false_fail_rate(n: int, margin: float, p_gain: float) -> float:
    """Exact P(upper limit < -margin) at a true Δ of -margin, by enumerating the trinomial."""
    p_loss = margin + p_gain
    b, c = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = b + c <= n
    b, c = b[keep], c[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = (gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(n - b - c + 1) + b * np.log(p_loss)
                + (c * np.log(p_gain) if p_gain > 0 else np.where(c == 0, 0.0, -np.inf))
                + (n - b - c) * np.log1p(-p_loss - p_gain))
    p = np.exp(logp)
    live = p > 1e-14
    _, hi = paired_binary_gate_bounds(b[live], c[live], n)
    return float(p[live][hi < -margin].sum())


@pytest.mark.parametrize("margin,n", [(0.05, 160), (0.02, 290), (0.01, 580)])
def test_fail_side_holds_its_level_with_no_gains(margin: float, n: int) -> None:
    """The issue measured 3.05%, 3.34% and 3.41% here; both sides must hold 2.5% exactly."""
    for p_gain in (0.0, 0.002, 0.005):
        assert _false_fail_rate(n, margin, p_gain) <= 0.025


def test_the_gate_interval_and_its_vectorised_form_agree() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 7, 40, 300):
        b = rng.integers(0, n + 1, 30)
        c = np.array([rng.integers(0, n - x + 1) for x in b])
        lo, hi = paired_binary_gate_bounds(b, c, n)
        for i in range(30):
            iv = paired_binary_gate_interval(int(b[i]), int(c[i]), n)
            assert iv.lo == pytest.approx(lo[i], abs=1e-9) and iv.hi == pytest.approx(hi[i], abs=1e-9)


def test_a_mirror_case_cannot_pass_superiority_by_min_effect(tmp_path: Path, capsys) -> None:
    """The PASS side of superiority by min_effect is the mirror of the FAIL side of non-inferiority: 14 gains and
    no loss in 160 items (Δ̂ = 0.0875) do not show Δ > 0.05 (exact lower bound of the gain rate 0.048)."""
    assert sps.beta.ppf(0.025, 14, 147) < 0.05
    base_s, cand_s = paired_binary(160, 80, 0, 14)
    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": base_s}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"acc": cand_s}}, adapter="cand")
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, superiority: true, min_effect: 0.05}\n", base, cand,
                                 capsys)
    assert code == 3 and verdict["rules"][0]["interval"]["lo"] < 0.05


# ---------------------------------------------------------------- 7. decide_on: estimate in --until-decided


def test_estimate_rules_are_refused_by_until_decided(tmp_path: Path, capsys) -> None:
    suite = write_suite(tmp_path / "suite", TWO_TASKS, {f"data/{t}.jsonl": rows for t, rows in ROWS.items()})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--limit", "5", "--out", str(tmp_path / "base")]) == 0
    capsys.readouterr()
    gate = _gate(tmp_path, "rules:\n  - suite: t\n    task: a\n    floor: 0.5\n    decide_on: estimate\n")
    code = main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 str(tmp_path / "base"), "--out", str(tmp_path / "cand")])
    err = capsys.readouterr().err
    assert code == 2 and "decide_on" in err and "rules.0.decide_on" in err and "Traceback" not in err
    assert not (tmp_path / "cand").exists()  # nothing half-written


# ---------------------------------------------------------------- 8. floors on unbounded metrics


def _latency_runs(tmp_path: Path) -> tuple[Path, Path]:
    values = np.random.default_rng(0).lognormal(0.0, 1.0, 200).round(4).tolist()
    base = build_run(tmp_path / "b", scores={("s", "t"): {"perplexity": values}})
    cand = build_run(tmp_path / "c", scores={("s", "t"): {"perplexity": values}}, adapter="cand")
    return base, cand


def test_a_floor_on_an_unbounded_metric_needs_declared_bounds(tmp_path: Path, capsys) -> None:
    base, cand = _latency_runs(tmp_path)
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, floor: 3.0}\n", base, cand, capsys)
    assert code == 2 and "unbounded" in out and "bounds" in out and "Traceback" not in out
    # declared bounds: the betting interval for bounded means decides it
    code, verdict, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, floor: 3.0, bounds: [0, 40]}\n",
                                   base, cand, capsys)
    assert code == 0 and verdict["rules"][0]["method"].startswith("betting"), out
    # a value outside them is bad input, naming the value
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, floor: 3.0, bounds: [0, 5]}\n",
                             base, cand, capsys)
    assert code == 2 and "outside the rule's bounds [0, 5]" in out
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, floor: 3.0, bounds: [5, 1]}\n",
                             base, cand, capsys)
    assert code == 2 and "bounds" in out
    # the point estimate stays available, labelled as such
    code, verdict, _ = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, floor: 3.0, "
                                           "decide_on: estimate}\n", base, cand, capsys)
    assert code == 0 and verdict["rules"][0]["decided_on"] == "estimate"


def test_a_robustness_rule_on_an_unbounded_metric_is_bad_input(tmp_path: Path, capsys) -> None:
    values = np.random.default_rng(1).lognormal(0.0, 1.0, 100).round(4).tolist()
    worse = (np.asarray(values) * 1.5).round(4).tolist()
    scores = {("s", "t"): {"perplexity": values}}
    perturbed = {("s", "t"): {"typo": {"perplexity": worse}}}
    base = build_run(tmp_path / "b", scores=scores, perturbed=perturbed)
    cand = build_run(tmp_path / "c", scores=scores, perturbed=perturbed, adapter="cand")
    code, _, out = _gate_cli(tmp_path, "rules:\n  - {suite: s, metric: perplexity, max_robustness_drop: 0.5}\n",
                             base, cand, capsys)
    assert code == 2 and "unbounded" in out and "Traceback" not in out


# ---------------------------------------------------------------- 9. planning


def test_plan_treats_max_drift_as_non_inferiority_not_robustness(tmp_path: Path, capsys) -> None:
    scores = {("general", "g"): {"acc": [1.0] * 60 + [0.0] * 40}}
    perturbed = {("general", "g"): {"typo": {"acc": [1.0] * 50 + [0.0] * 50}}}
    base = build_run(tmp_path / "b", scores=scores, perturbed=perturbed)
    gate = _gate(tmp_path, "rules:\n  - max_drift: {from: first, metric: general/acc, margin: 0.05}\n")
    assert main(["plan", str(gate), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "max_drift" in out and "non-inferiority" in out


def test_plan_says_when_the_suite_cannot_decide_a_rule(tmp_path: Path, capsys) -> None:
    base = build_run(tmp_path / "b", scores={("s", "t"): {"acc": [1.0] * 6 + [0.0] * 4}})
    gate = _gate(tmp_path, "rules:\n  - {suite: s, non_inferiority: 0.05}\n")
    assert main(["plan", str(gate), "--baseline", str(base)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "10 items of this task" in out and "cannot be decided" in out and "could be" in out


# ---------------------------------------------------------------- 10. the ledger records --until-decided verdicts


def test_an_until_decided_verdict_is_recorded_and_promotable(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TUNEGATE_STORE", str(tmp_path / "ledger.sqlite"))
    suite = write_suite(tmp_path / "suite", TWO_TASKS, {f"data/{t}.jsonl": rows for t, rows in ROWS.items()})
    assert main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--out", str(tmp_path / "base")]) == 0
    gate = _gate(tmp_path, "rules:\n  - {suite: t, non_inferiority: 0.2}\n")
    assert main(["channel", "create", "approved", "--gate", str(gate), "--release", str(tmp_path / "base")]) == 0
    capsys.readouterr()
    code = main(["eval", "-q", "-m", "fake:toy", "-s", str(suite), "--until-decided", str(gate), "--baseline",
                 "approved", "--out", str(tmp_path / "cand")])
    assert code == 0, capsys.readouterr()
    # promote finds the recorded passing verdict without re-running the gate
    assert main(["promote", str(tmp_path / "cand"), "--to", "approved"]) == 0
    assert "release 2" in capsys.readouterr().out
