"""Paired comparison of two runs: deltas, intervals, exact tests, flips, robustness, efficiency."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness import stats
from harness.api import UserError
from harness.runs import Run

# Metrics where a smaller value is better; everything else is "higher is better".
LOWER_IS_BETTER = ("perplexity", "loss", "bits_per_byte", "bpb", "ter", "error", "latency")
Key = tuple[str, str | None, str]  # (suite, task or None for the pooled suite, metric)


def higher_is_better(metric: str) -> bool:
    name = metric.lower()
    return not any(token in name for token in LOWER_IS_BETTER)


@dataclass
class MetricComparison:
    """One metric of one task (or of a whole suite when task is None), baseline vs candidate."""

    suite: str
    task: str | None
    metric: str
    base: float
    cand: float
    delta: float  # cand - base, in the metric's own direction
    lo: float | None  # 95% paired-bootstrap interval of delta; None when no paired test applies
    hi: float | None
    n: int  # paired samples (0 for corpus-level metrics)
    paired: bool
    binary: bool
    higher_is_better: bool
    test: str  # which test produced p_value
    p_value: float | None
    p_holm: float | None = None  # Holm-adjusted across suites (suite-level rows only)
    b: int | None = None  # right→wrong (binary metrics)
    c: int | None = None  # wrong→right
    base_ci: tuple[float, float] | None = None
    cand_ci: tuple[float, float] | None = None

    @property
    def improvement(self) -> float:
        """delta oriented so that positive is better."""
        return self.delta if self.higher_is_better else -self.delta


@dataclass
class Flip:
    """A sample whose binary score changed between the runs."""

    suite: str
    task: str
    sample_id: str
    metric: str
    direction: str  # "right→wrong" (regression) or "wrong→right" (improvement)
    prompt: str
    target: Any
    base_response: str | None
    cand_response: str | None
    perturbation: str | None = None


@dataclass
class RobustnessRow:
    """Clean, per-perturbation and worst-case scores of one metric, for both runs."""

    suite: str
    task: str | None
    metric: str
    clean: tuple[float, float]  # (baseline, candidate)
    worst_case: tuple[float, float] | None
    perturbations: dict[str, tuple[float, float]] = field(default_factory=dict)
    n: int = 0
    source: str = "samples"  # "samples" (recomputed, paired) or "results" (aggregates from results.json)

    def drop(self, which: int = 1) -> float | None:
        """Clean minus worst case (positive = the perturbations hurt), for baseline (0) or candidate (1)."""
        if self.worst_case is None:
            return None
        sign = 1.0 if higher_is_better(self.metric) else -1.0
        return sign * (self.clean[which] - self.worst_case[which])


@dataclass
class Efficiency:
    """Cost figures of one run: evaluation timing plus training provenance when present."""

    label: str
    method: str
    wall_seconds: float | None = None
    tokens_per_second: float | None = None
    tokens_processed: int | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    train_seconds: float | None = None
    train_tokens_per_second: float | None = None
    adapter_bytes: int | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Comparison:
    """Everything `compare_runs` found; `format_comparison` and the reports render it."""

    baseline: Run
    candidate: Run
    metrics: list[MetricComparison]
    flips: list[Flip]
    robustness: list[RobustnessRow]
    efficiency: tuple[Efficiency, Efficiency]
    only_in_baseline: list[str]
    only_in_candidate: list[str]
    unmatched: int  # samples present in only one of the runs (left out of paired statistics)
    n_resamples: int
    seed: int
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    worst_pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def get(self, suite: str, task: str | None, metric: str) -> MetricComparison | None:
        for row in self.metrics:
            if (row.suite, row.task, row.metric) == (suite, task, metric):
                return row
        return None

    def suite_rows(self) -> list[MetricComparison]:
        return [row for row in self.metrics if row.task is None]

    def suites(self) -> list[str]:
        return list(dict.fromkeys(row.suite for row in self.metrics))

    def primary_metric(self, suite: str, task: str | None = None) -> str | None:
        """The first metric listed for the suite (or task): the one tables and plots show."""
        for row in self.metrics:
            if row.suite == suite and row.task == task:
                return row.metric
        return None

    def robustness_row(self, suite: str, task: str | None, metric: str) -> RobustnessRow | None:
        for row in self.robustness:
            if (row.suite, row.task, row.metric) == (suite, task, metric):
                return row
        return None


# ---------------------------------------------------------------- checks and alignment


def _check_fingerprints(base: Run, cand: Run) -> tuple[list[str], list[str], list[str]]:
    """Common suites, and the suites only one run has; UserError when a shared suite or prompt differs."""
    common = [s for s in base.suites if s in cand.suites]
    if not common:
        raise UserError(f"runs share no suite (baseline: {', '.join(base.suites)}; "
                        f"candidate: {', '.join(cand.suites)})", source=str(cand.path))
    for suite in common:
        fb, fc = base.suites[suite].get("fingerprint"), cand.suites[suite].get("fingerprint")
        if fb != fc:
            raise UserError(f"suite '{suite}' differs between the runs (fingerprint {str(fb)[:12]} in "
                            f"{base.path} vs {str(fc)[:12]} in {cand.path}); re-run both on the same suite")
        tb, tc = base.suites[suite]["tasks"], cand.suites[suite]["tasks"]
        if set(tb) != set(tc):
            raise UserError(f"suite '{suite}' has different tasks: baseline {sorted(tb)} vs candidate {sorted(tc)}")
        for task in tb:
            hb, hc = tb[task].get("prompt_hash"), tc[task].get("prompt_hash")
            if hb != hc:
                raise UserError(f"prompts of task '{suite}/{task}' differ between the runs (prompt_hash "
                                f"{str(hb)[:12]} vs {str(hc)[:12]}): check chat template, few-shot, "
                                f"generation settings and --limit")
    only_b = [s for s in base.suites if s not in cand.suites]
    only_c = [s for s in cand.suites if s not in base.suites]
    return common, only_b, only_c


def _by_task(run: Run, suites: list[str]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    wanted = set(suites)
    for sample in run.samples:
        if sample["suite"] in wanted:
            out[(sample["suite"], sample["task"])][sample["sample_id"]] = sample
    return out


def _metric_names(task: dict[str, Any], samples: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """All metric names of a task (results order first) and those with per-sample scores."""
    per_sample = {m for s in samples for m in s.get("scores", {})}
    names = list(task.get("metrics", {}))
    names += sorted(m for m in per_sample if m not in names)
    return names, per_sample


def _ci(metric: dict[str, Any] | None) -> tuple[float, float] | None:
    ci = (metric or {}).get("ci95")
    return (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None


def _scores(pairs: list[tuple[dict, dict]], metric: str) -> tuple[np.ndarray, np.ndarray]:
    kept = [(b["scores"][metric], c["scores"][metric]) for b, c in pairs
            if metric in b["scores"] and metric in c["scores"]
            and b["scores"][metric] is not None and c["scores"][metric] is not None]
    arr = np.asarray(kept, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


# ---------------------------------------------------------------- statistics per metric


def _paired_row(suite: str, task: str | None, metric: str, b: np.ndarray, c: np.ndarray,
                n_resamples: int, seed: int, cis: tuple[Any, Any]) -> MetricComparison:
    delta, lo, hi = stats.paired_bootstrap(b, c, n_resamples=n_resamples, seed=seed)
    binary = stats.is_binary(b, c)
    if binary:
        nb, nc = stats.discordant(b, c)
        p, test = stats.mcnemar_exact(nb, nc), "exact McNemar"
    else:
        nb = nc = None
        p, test = stats.sign_flip_pvalue(b, c, n_resamples=n_resamples, seed=seed), "sign-flip permutation"
    return MetricComparison(suite, task, metric, float(b.mean()), float(c.mean()), delta, lo, hi, int(b.size),
                            True, binary, higher_is_better(metric), test, p, None, nb, nc, *cis)


def _corpus_row(suite: str, task: str | None, metric: str, mb: dict | None,
                mc: dict | None) -> MetricComparison | None:
    if not mb or not mc:
        return None
    vb, vc = float(mb["value"]), float(mc["value"])
    return MetricComparison(suite, task, metric, vb, vc, vc - vb, None, None, 0, False, False,
                            higher_is_better(metric), "none: corpus-level metric, no paired test applies",
                            None, base_ci=_ci(mb), cand_ci=_ci(mc))


def _originals(samples: dict[str, dict]) -> dict[str, dict]:
    clean = {k: s for k, s in samples.items() if not s.get("perturbation")}
    return clean or samples  # a task made only of perturbed samples is scored on all of them


def _flips(suite: str, task: str, metric: str, pairs: list[tuple[dict, dict]]) -> list[Flip]:
    out = []
    for b, c in pairs:
        sb, sc = b["scores"].get(metric), c["scores"].get(metric)
        if sb is None or sc is None or sb == sc:
            continue
        direction = "right→wrong" if sb > sc else "wrong→right"
        out.append(Flip(suite, task, b["sample_id"], metric, direction, b.get("prompt", ""), b.get("target"),
                        b.get("response"), c.get("response"), b.get("perturbation")))
    return out


# ---------------------------------------------------------------- robustness


def _worst_case(samples: dict[str, dict], metric: str) -> dict[str, float]:
    """Per source sample: the minimum score over the original and all its perturbed versions."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    worst: dict[str, float] = {}
    for s in samples.values():
        v = s["scores"].get(metric)
        if v is None:
            continue
        src = s.get("source_id") or s["sample_id"]
        worst[src] = v if src not in worst else sign * min(sign * worst[src], sign * v)
    return worst


def _robustness_from_samples(suite: str, task: str | None, metric: str, sb: dict[str, dict],
                             sc: dict[str, dict]) -> tuple[RobustnessRow, tuple[np.ndarray, np.ndarray]] | None:
    common = [k for k in sb if k in sc]
    perts = sorted({sb[k]["perturbation"] for k in common if sb[k].get("perturbation")})
    if not perts:
        return None
    per: dict[str, tuple[float, float]] = {}
    for pert in perts:
        pairs = [(sb[k], sc[k]) for k in common if sb[k].get("perturbation") == pert]
        b, c = _scores(pairs, metric)
        if b.size:
            per[pert] = (float(b.mean()), float(c.mean()))
    clean_pairs = [(sb[k], sc[k]) for k in common if not sb[k].get("perturbation")]
    cb, cc = _scores(clean_pairs, metric)
    wb = _worst_case({k: sb[k] for k in common}, metric)
    wc = _worst_case({k: sc[k] for k in common}, metric)
    srcs = [s for s in wb if s in wc]
    if not cb.size or not srcs:
        return None
    wbarr, wcarr = np.array([wb[s] for s in srcs]), np.array([wc[s] for s in srcs])
    row = RobustnessRow(suite, task, metric, (float(cb.mean()), float(cc.mean())),
                        (float(wbarr.mean()), float(wcarr.mean())), per, len(srcs), "samples")
    return row, (wbarr, wcarr)


def _robustness_from_results(suite: str, task: str, tb: dict, tc: dict) -> list[RobustnessRow]:
    rows = []
    pb, pc = tb.get("perturbations") or {}, tc.get("perturbations") or {}
    rb, rc = tb.get("robustness") or {}, tc.get("robustness") or {}
    for metric, mb in tb.get("metrics", {}).items():
        mc = tc.get("metrics", {}).get(metric)
        per = {p: (float(pb[p][metric]["value"]), float(pc[p][metric]["value"]))
               for p in pb if p in pc and metric in pb[p] and metric in pc[p]}
        wkey = f"worst_case_{metric}"
        worst = (float(rb[wkey]["value"]), float(rc[wkey]["value"])) if wkey in rb and wkey in rc else None
        if mc and (per or worst):
            rows.append(RobustnessRow(suite, task, metric, (float(mb["value"]), float(mc["value"])), worst, per,
                                      int(mb.get("n") or 0), "results"))
    return rows


# ---------------------------------------------------------------- efficiency


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def efficiency(run: Run) -> Efficiency:
    """Timing of the evaluation and, for adapters, the training provenance."""
    timing = run.results.get("timing") or {}
    prov = run.provenance
    adapter_bytes = _num(prov.get("adapter_bytes"))
    trainable, total = _num(prov.get("trainable_params")), _num(prov.get("total_params"))
    curve = prov.get("curve") if isinstance(prov.get("curve"), list) else []
    return Efficiency(
        label=run.label, method=run.method,
        wall_seconds=_num(timing.get("wall_seconds")), tokens_per_second=_num(timing.get("tokens_per_second")),
        tokens_processed=int(timing["tokens_processed"]) if _num(timing.get("tokens_processed")) is not None else None,
        trainable_params=int(trainable) if trainable is not None else None,
        total_params=int(total) if total is not None else None,
        train_seconds=_num(prov.get("train_seconds")), train_tokens_per_second=_num(prov.get("tokens_per_second")),
        adapter_bytes=int(adapter_bytes) if adapter_bytes is not None else None,
        curve=[p for p in curve if isinstance(p, dict) and _num(p.get("step")) is not None])


# ---------------------------------------------------------------- the entry point


def compare_runs(baseline: Run, candidate: Run, *, n_resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Paired comparison of candidate against baseline, aligned by (suite, task, sample_id)."""
    common, only_b, only_c = _check_fingerprints(baseline, candidate)
    samples_b, samples_c = _by_task(baseline, common), _by_task(candidate, common)
    rows: list[MetricComparison] = []
    flips: list[Flip] = []
    robustness: list[RobustnessRow] = []
    pairs_store: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    worst_store: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    unmatched = 0
    for suite in common:
        sres_b, sres_c = baseline.suites[suite], candidate.suites[suite]
        pooled: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
        pooled_all_b: dict[str, dict] = {}
        pooled_all_c: dict[str, dict] = {}
        suite_metric_order: list[str] = list(sres_b.get("metrics") or {})
        for task, tres_b in sres_b["tasks"].items():
            tres_c = sres_c["tasks"][task]
            sb, sc = samples_b.get((suite, task), {}), samples_c.get((suite, task), {})
            unmatched += len(sb.keys() ^ sc.keys())
            ob, oc = _originals(sb), _originals(sc)
            pairs = [(ob[k], oc[k]) for k in ob if k in oc]
            names, per_sample = _metric_names(tres_b, list(ob.values()) + list(oc.values()))
            flip_metric: str | None = None
            for metric in names:
                if metric not in suite_metric_order:
                    suite_metric_order.append(metric)
                b, c = _scores(pairs, metric) if metric in per_sample else (np.empty(0), np.empty(0))
                cis = (_ci(tres_b["metrics"].get(metric)), _ci(tres_c["metrics"].get(metric)))
                if b.size:
                    row = _paired_row(suite, task, metric, b, c, n_resamples, seed, cis)
                    pairs_store[(suite, task, metric)] = (b, c)
                    pooled[metric].extend(pairs)
                    if row.binary and flip_metric is None:
                        flip_metric = metric
                else:
                    row = _corpus_row(suite, task, metric, tres_b["metrics"].get(metric),
                                      tres_c["metrics"].get(metric))
                if row is not None:
                    rows.append(row)
            if flip_metric:
                flips.extend(_flips(suite, task, flip_metric, pairs))
            # Robustness: recomputed (and paired) from perturbed samples; else the results.json aggregates.
            primary = next((m for m in names if m in per_sample), None)
            found = _robustness_from_samples(suite, task, primary, sb, sc) if primary else None
            if found:
                robustness.append(found[0])
                worst_store[(suite, task, primary)] = found[1]
                pooled_all_b.update({f"{task}\x00{k}": v for k, v in sb.items()})
                pooled_all_c.update({f"{task}\x00{k}": v for k, v in sc.items()})
            else:
                robustness.extend(_robustness_from_results(suite, task, tres_b, tres_c))
        rows.extend(_suite_rows(suite, suite_metric_order, pooled, sres_b, sres_c, n_resamples, seed, pairs_store))
        _suite_robustness(suite, rows, pooled_all_b, pooled_all_c, robustness, worst_store)
    _apply_holm(rows)
    rows.sort(key=lambda r: (common.index(r.suite), r.task is not None))  # suite row first, then its tasks
    return Comparison(baseline, candidate, rows, flips, robustness, (efficiency(baseline), efficiency(candidate)),
                      only_b, only_c, unmatched, n_resamples, seed, pairs_store, worst_store)


def _suite_rows(suite: str, order: list[str], pooled: dict[str, list[tuple[dict, dict]]], sres_b: dict,
                sres_c: dict, n_resamples: int, seed: int,
                pairs_store: dict[Key, tuple[np.ndarray, np.ndarray]]) -> list[MetricComparison]:
    """Suite-level rows: per-sample metrics pooled over tasks; corpus metrics from suite aggregates."""
    out = []
    for metric in order:
        mb, mc = (sres_b.get("metrics") or {}).get(metric), (sres_c.get("metrics") or {}).get(metric)
        if pooled.get(metric):
            b, c = _scores(pooled[metric], metric)
            pairs_store[(suite, None, metric)] = (b, c)
            out.append(_paired_row(suite, None, metric, b, c, n_resamples, seed, (_ci(mb), _ci(mc))))
        else:
            row = _corpus_row(suite, None, metric, mb, mc)
            if row is not None:
                out.append(row)
    return out


def _suite_robustness(suite: str, rows: list[MetricComparison], all_b: dict, all_c: dict,
                      robustness: list[RobustnessRow], worst_store: dict) -> None:
    """Pool robustness over the suite's tasks (source ids are made unique per task)."""
    metric = next((r.metric for r in rows if r.suite == suite and r.task is None and r.paired), None)
    if metric is None or not all_b:
        return
    rekey = lambda d: {k: {**v, "source_id": f"{v['task']}\x00{v['source_id']}"} for k, v in d.items()}  # noqa: E731
    found = _robustness_from_samples(suite, None, metric, rekey(all_b), rekey(all_c))
    if found:
        robustness.append(found[0])
        worst_store[(suite, None, metric)] = found[1]


def _apply_holm(rows: list[MetricComparison]) -> None:
    """Holm–Bonferroni across the suites compared, separately for each metric name."""
    by_metric: dict[str, list[MetricComparison]] = defaultdict(list)
    for row in rows:
        if row.task is None and row.p_value is not None:
            by_metric[row.metric].append(row)
    for family in by_metric.values():
        for row, adjusted in zip(family, stats.holm([r.p_value for r in family])):
            row.p_holm = adjusted


# ---------------------------------------------------------------- terminal output


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_delta(row: MetricComparison) -> str:
    return f"{row.delta:+.3f}"


def fmt_ci(lo: float | None, hi: float | None) -> str:
    return "n/a" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_comparison(comp: Comparison) -> str:
    """A terminal table (rich) of the comparison: metrics, flips, efficiency."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=130, force_terminal=False, color_system=None)
    table = Table(title=f"{comp.candidate.label} vs {comp.baseline.label} "
                        f"(paired bootstrap 95% CI, {comp.n_resamples} resamples, seed {comp.seed})")
    for col in ("suite / task", "metric", "n", comp.baseline.label, comp.candidate.label, "Δ", "95% CI",
                "p", "p (Holm)", "test"):
        table.add_column(col, justify="left" if col in ("suite / task", "metric", "test") else "right")
    for row in comp.metrics:
        name = row.suite if row.task is None else f"  {row.task}"
        test = row.test if row.paired else "corpus-level: no paired test"
        if row.binary:
            test += f" ({row.b}↓ {row.c}↑)"
        table.add_row(name, row.metric, str(row.n or "–"), fmt_num(row.base), fmt_num(row.cand), fmt_delta(row),
                      fmt_ci(row.lo, row.hi), fmt_p(row.p_value), fmt_p(row.p_holm), test)
    console.print(table)
    down = sum(f.direction == "right→wrong" for f in comp.flips)
    console.print(f"flipped samples: {down} right→wrong, {len(comp.flips) - down} wrong→right")
    if comp.unmatched:
        console.print(f"note: {comp.unmatched} samples present in only one run were left out of paired statistics")
    for label, suites in (("baseline", comp.only_in_baseline), ("candidate", comp.only_in_candidate)):
        if suites:
            console.print(f"note: suites only in the {label}: {', '.join(suites)} (not compared)")
    eff = Table(title="efficiency")
    for col in ("run", "method", "eval wall s", "eval tok/s", "trainable params", "adapter size",
                "train s", "train tok/s"):
        eff.add_column(col, justify="left" if col in ("run", "method") else "right")
    for e in comp.efficiency:
        eff.add_row(e.label, e.method, fmt_num(e.wall_seconds, 1), fmt_num(e.tokens_per_second, 1),
                    fmt_count(e.trainable_params), fmt_bytes(e.adapter_bytes), fmt_num(e.train_seconds, 1),
                    fmt_num(e.train_tokens_per_second, 1))
    console.print(eff)
    return buf.getvalue()


def fmt_count(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
