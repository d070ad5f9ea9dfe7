"""Paired comparison of two runs: item-level deltas, valid intervals, exact tests, flips, robustness.

The unit of analysis is the item (a source sample): rows that share an item (perturbed variants, several
generations) are averaged per item before any statistic, so rows are never treated as independent.
Every function here returns values; `harness.report.terminal` formats them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.core.api import UserError
from harness.core.untrusted import excerpt
from harness.data.runfile import SampleRow
from harness.data.runs import Run
from harness.decide.activerun import Planned, task_design
from harness.inference import stats
from harness.inference.evidence import UNBOUNDED_MIN_N, delta_interval
from harness.inference.sequential import CS_TRUNCATION, PRIOR_VARIANCE, Design, term_mean
from harness.inference.stats import Interval
from harness.scoring import metrics

Key = tuple[str, str | None, str]  # (suite, task or None for the pooled suite, metric)


# ---------------------------------------------------------------- what a comparison holds


@dataclass
class Scores:
    """Per-item scores of one metric in one run: the unit every statistic below works on."""

    items: list[str]
    values: np.ndarray
    missing: int = 0  # rows whose score was null: counted as failures (binary/bounded) or left out
    rows: int = 0  # scored rows behind the items (> len(items) when items have several rows)


@dataclass
class Own:
    """One run's own score of a metric, over all of its items (not only those the other run shares)."""

    value: float
    interval: Interval
    n: int
    missing: int = 0


@dataclass
class MetricComparison:
    """One metric of one task (or of a whole suite when task is None), baseline vs candidate."""

    suite: str
    task: str | None
    metric: str
    base: float
    cand: float
    delta: float  # cand - base, in the metric's own units
    interval: Interval | None  # of delta; None when no paired statistic applies (corpus-level metric)
    n: int  # paired items (0 for corpus-level metrics)
    paired: bool
    binary: bool
    higher_is_better: bool
    bounds: tuple[float, float] | None
    test: str  # which test produced p_value
    p_value: float | None
    p_holm: float | None = None  # Holm-adjusted across suites (suite-level rows only)
    b: int | None = None  # right→wrong (binary metrics)
    c: int | None = None  # wrong→right
    base_own: Own | None = None
    cand_own: Own | None = None
    only_base: int = 0  # items scored in the baseline only (an incomplete candidate)
    only_cand: int = 0
    tasks: tuple[str, ...] = ()  # the tasks pooled into a suite row

    @property
    def lo(self) -> float | None:
        return self.interval.lo if self.interval else None

    @property
    def hi(self) -> float | None:
        return self.interval.hi if self.interval else None

    @property
    def improvement(self) -> float:
        """delta oriented so that positive is better."""
        return self.delta if self.higher_is_better else -self.delta

    @property
    def base_ci(self) -> tuple[float, float] | None:
        return _pair(self.base_own.interval) if self.base_own else None

    @property
    def cand_ci(self) -> tuple[float, float] | None:
        return _pair(self.cand_own.interval) if self.cand_own else None


def _pair(interval: Interval | None) -> tuple[float, float] | None:
    return (interval.lo, interval.hi) if interval and interval.lo is not None and interval.hi is not None else None


@dataclass
class Flip:
    """A sample whose binary score changed between the runs."""

    suite: str
    task: str
    sample_id: str
    metric: str
    direction: str  # "right→wrong" (regression) or "wrong→right" (improvement)
    prompt: str | None
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
    source: str = "samples"  # "samples" (recomputed per item) or "results" (aggregates from results.json)
    higher_is_better: bool = True
    drops: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # per-item, oriented ≥ 0
    binary: bool = False

    def drop(self, which: int = 1) -> float | None:
        """Clean minus worst case (positive = the perturbations hurt), for baseline (0) or candidate (1)."""
        if self.worst_case is None:
            return None
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * (self.clean[which] - self.worst_case[which])


@dataclass
class Comparison:
    """Everything `compare_runs` found; `harness.report.terminal` and the reports render it."""

    baseline: Run
    candidate: Run
    metrics: list[MetricComparison]
    flips: list[Flip]
    robustness: list[RobustnessRow]
    only_in_baseline: list[str]
    only_in_candidate: list[str]
    incomplete: dict[tuple[str, str], tuple[int, int]]  # (suite, task) -> (#only in baseline, #only in candidate)
    n_resamples: int
    seed: int
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    sequential: dict[str, Any] | None = None  # the `sequential` block of a run evaluated until decided
    judged: tuple[Run, Run] | None = field(default=None, repr=False)  # sequential: both runs restricted to the
    # evaluated ids, in evaluation order (baseline and candidate stay the runs as loaded)
    backends_note: str | None = None  # set when the runs were answered by different kinds of backend
    # (suite, metric) -> task -> higher_is_better, for metrics whose tasks disagree on direction: no pooled row
    # exists for them (a mean over "higher is better" and "lower is better" items measures nothing)
    mixed_directions: dict[tuple[str, str], dict[str, bool]] = field(default_factory=dict)
    # an active run: the design each task row's sequence runs with (importance weights, or the difference
    # estimator's control variate), which the gate judges with too
    designs: dict[Key, Design] = field(default_factory=dict, repr=False)

    @property
    def judged_candidate(self) -> Run:
        """The candidate as the statistics see it (restricted and ordered for a sequential pair)."""
        return self.judged[1] if self.judged else self.candidate

    @property
    def unmatched(self) -> int:
        """Samples present in only one of the runs (left out of paired statistics)."""
        return sum(a + b for a, b in self.incomplete.values())

    def get(self, suite: str, task: str | None, metric: str) -> MetricComparison | None:
        for row in self.metrics:
            if (row.suite, row.task, row.metric) == (suite, task, metric):
                return row
        return None

    def suite_rows(self) -> list[MetricComparison]:
        return [row for row in self.metrics if row.task is None]

    def task_rows(self, suite: str) -> list[MetricComparison]:
        return [row for row in self.metrics if row.suite == suite and row.task is not None]

    def suites(self) -> list[str]:
        return list(dict.fromkeys(row.suite for row in self.metrics))

    def tasks(self, suite: str) -> list[str]:
        return list(dict.fromkeys(row.task for row in self.task_rows(suite) if row.task))

    def primary_metric(self, suite: str, task: str | None = None) -> str | None:
        """The first metric listed for the suite (or task): its headline metric."""
        for row in self.metrics:
            if row.suite == suite and row.task == task:
                return row.metric
        return None

    def robustness_row(self, suite: str, task: str | None, metric: str) -> RobustnessRow | None:
        for row in self.robustness:
            if (row.suite, row.task, row.metric) == (suite, task, metric):
                return row
        return None


# ---------------------------------------------------------------- checks


def mixed_direction_notes(comp: Comparison) -> list[str]:
    """Why a suite has no pooled row for a metric: its tasks disagree on the metric's direction."""
    out = []
    for (suite, metric), directions in comp.mixed_directions.items():
        up = ", ".join(t for t, hib in directions.items() if hib)
        down = ", ".join(t for t, hib in directions.items() if not hib)
        out.append(f"{suite}: no pooled {metric} row: higher is better in {up}, lower is better in {down}")
    return out


def backend_of(run: Run) -> dict[str, Any]:
    """The backend that answered a run, from its fingerprint (runs from before backends recorded one: hf)."""
    fp = (run.results.get("model") or {}).get("fingerprint") or {}
    backend = fp.get("backend", "hf")
    in_process = backend == "hf"  # runs from before the device was recorded ran on the CPU in float32
    return {"backend": backend, "device": fp.get("device") or ("cpu" if in_process else None),
            "dtype": fp.get("dtype") or ("float32" if in_process else None), "weights": fp.get("weights")}


def backends_note(base: Run, cand: Run) -> str | None:
    """A plain sentence when the two runs were answered by different backends (in process vs an endpoint,
    or another device or dtype): a difference then also measures the serving stack, not only the weights."""
    b, c = backend_of(base), backend_of(cand)
    if b == c:
        return None

    def say(x: dict[str, Any]) -> str:
        if x["backend"] == "hf":
            return f"in process (hf, {x['device']} {x['dtype']})"
        return f"through {x['backend']}" + (" (an endpoint: not fingerprinted by its weights)" if x["weights"] else "")

    return (f"the backends differ: baseline answered {say(b)}, candidate {say(c)}; a difference also measures "
            "the serving stack (quantisation, kernels, dtype), not only the model")


def check_compatible(base: Run, cand: Run, per_sample: bool = False) -> tuple[list[str], list[str], list[str]]:
    """Common suites, and the suites only one run has; UserError when a shared suite or prompt differs.

    per_sample: a sequential pair, whose prompts were already checked sample by sample (a task's prompt_hash
    covers every sample the run evaluated, and a sequential run evaluated a subset)."""
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
            if hb != hc and not per_sample:
                differ = backends_note(base, cand)
                raise UserError(f"prompts of task '{suite}/{task}' differ between the runs (prompt_hash "
                                f"{str(hb)[:12]} vs {str(hc)[:12]}): check chat template, few-shot, "
                                f"generation settings and --limit" + (
                                    f". {differ}; a chat-templated prompt is rendered by tunegate in process but by "
                                    "the server through an endpoint, so such tasks cannot be paired" if differ else ""))
    return common, [s for s in base.suites if s not in cand.suites], [s for s in cand.suites if s not in base.suites]


def metric_direction(runs: tuple[Run, Run], suite: str, task: str | None, metric: str) -> bool:
    """higher_is_better as results.json records it (task entry, then suite entry), else the metric registry."""
    for run in runs:
        entry = run.suites.get(suite, {})
        places = [entry.get("tasks", {}).get(task, {}).get("metrics", {})] if task else []
        places.append(entry.get("metrics") or {})
        for place in places:
            value = (place.get(metric) or {}).get("higher_is_better") if isinstance(place, dict) else None
            if isinstance(value, bool):
                return value
    known = metrics.REGISTRY.get(metric)
    if known is not None:
        return known.higher_is_better
    # A run written before directions were recorded, with a metric tunegate does not know.
    raise UserError(f"the direction of metric '{metric}' ({suite}{'/' + task if task else ''}) is unknown: "
                    "results.json records no higher_is_better for it and it is not a registered metric")


def metric_bounds(metric: str, values: np.ndarray) -> tuple[float, float] | None:
    """The range a per-sample score can take: the registry's declaration, else [0, 1] for 0/1 data.

    A declared range the data leave is not trusted (a bounded interval on such data would not hold)."""
    known = metrics.REGISTRY.get(metric)
    declared = getattr(known, "bounds", None) if known is not None else None
    if declared is not None:
        lo, hi = float(declared[0]), float(declared[1])
        if not values.size or (values.min() >= lo and values.max() <= hi):
            return (lo, hi)
    if values.size and stats.is_binary(values):
        return (0.0, 1.0)
    return None


# ---------------------------------------------------------------- sequential runs

SampleKey = tuple[str, str, str]  # (suite, task, sample_id)


def prompt_sha(prompt: str | None) -> str:
    """The per-sample prompt hash a sequential run records: sha256 of the exact model input."""
    return hashlib.sha256((prompt or "").encode("utf-8")).hexdigest()


def sequential_design(block: dict[str, Any] | None, suite: str, tasks: Sequence[str]) -> Design | None:
    """The horizon design a sequential run recorded for one task or for tasks pooled (their horizons added),
    its center on the larger-is-better scale of the improvement; None for a run recorded without one (judged
    with the LIL schedule, as before) or when a pooled task lacks one. Pooled tasks with different centers bet
    on the width only."""
    recorded: dict[str, dict[str, Any]] = (block or {}).get("design") or {}
    keys = [f"{suite}/{task}" for task in tasks]
    active_block = (block or {}).get("active")
    if active_block and len(keys) == 1:  # an active run: the task's draws' importance weights, in draw order
        base = recorded.get(keys[0])
        horizon = int(base["horizon"]) if base else 0
        center = None if not base or base.get("center") is None else float(base["center"])
        draws = (active_block.get("draws") or {}).get(keys[0]) or []
        info = (active_block.get("tasks") or {}).get(keys[0]) or {}
        n = int(info.get("population", 0))
        prior_variance, truncation = bets_of(info)
        return Design(horizon, center, tuple(1.0 / (n * float(q)) for _, q in draws), float(info.get("bound", 1.0)),
                      prior_variance=prior_variance, truncation=truncation)
    if not keys or any(k not in recorded for k in keys):
        return None
    entries = [recorded[k] for k in keys]
    centers = {e.get("center") for e in entries}
    center = centers.pop() if len(centers) == 1 else None
    return Design(sum(int(e["horizon"]) for e in entries), None if center is None else float(center))


def bets_of(info: dict[str, Any]) -> tuple[float, float]:
    """(prior variance, truncation) an active run's task recorded (`runfile.ActiveBets`: both or neither); a run
    from before them: WSR's, the bets it ran with."""
    bets = info.get("bets")
    if not bets:
        return PRIOR_VARIANCE, CS_TRUNCATION
    return float(bets["prior_variance"]), float(bets["truncation"])


def is_active(block: dict[str, Any] | None) -> bool:
    """True for a run made with `eval --until-decided --active` (draws toward likely flips)."""
    return bool((block or {}).get("active"))


def planned_against(loaded: tuple[Run, Run]) -> Planned | None:
    """For an active run: the other run as loaded (every item, not only those drawn), the one its difference
    estimator reads the signs from."""
    base, cand = loaded
    owner, other, is_cand = (cand, base, False) if cand.results.get("sequential") else (base, cand, True)
    if not is_active(owner.results.get("sequential")):
        return None
    return Planned(other, is_cand, str(owner.path))


def expand_draws(samples: dict[str, SampleRow], block: dict[str, Any], suite: str, task: str) -> dict[str, SampleRow]:
    """An active run's rows of one task, one per draw in draw order (an item drawn twice appears twice, under
    its own id, so that the sequence counts its term twice: the draws are iid only so counted)."""
    draws = (block["active"].get("draws") or {}).get(f"{suite}/{task}") or []
    by_source = {str(s.get("source_id") or s["sample_id"]): s for s in samples.values()}
    out: dict[str, SampleRow] = {}
    for k, (source, _) in enumerate(draws):
        row = by_source.get(str(source))
        if row is None:
            raise UserError(f"the active run's draw {k + 1} of {excerpt(suite, 40)}/{excerpt(task, 40)} names item "
                            f"{excerpt(str(source), 40)}, which the runs' samples lack")
        out[f"{row['sample_id']}\x00{k}"] = {**row, "source_id": f"{source}\x00{k}"}
    return out


def sequential_order(block: dict[str, Any]) -> dict[SampleKey, int]:
    """Each evaluated sample's position in the evaluation order of a sequential run."""
    return {(i["suite"], i["task"], i["sample_id"]): k for k, i in enumerate(block["items"])}


def restrict_sequential(base: Run, cand: Run) -> tuple[Run, Run, dict[str, Any] | None]:
    """Pair a sequential run on the samples it evaluated, in its evaluation order.

    A sequential run covers a seeded subset of each split; the other run must hold every evaluated sample
    with the same prompt (UserError otherwise), and its other samples are left out (expected, not an
    incomplete pair). Both runs' samples come back sorted by evaluation order, which the confidence
    sequence needs. (None, unchanged runs) when neither run is sequential."""
    blocks: list[tuple[Run, dict[str, Any]]] = [(run, run.results["sequential"]) for run in (cand, base)
                                                 if run.results.get("sequential")]
    if not blocks:
        return base, cand, None
    owner, block = blocks[0]
    order = sequential_order(block)
    hashes = {(i["suite"], i["task"], i["sample_id"]): i["prompt_hash"] for i in block["items"]}
    if len(blocks) == 2 and set(sequential_order(blocks[1][1])) != set(order):
        raise UserError(f"both runs are sequential but evaluated different samples ({base.path} and {cand.path}); "
                        "gate a sequential run against a complete run or the baseline it was evaluated with")
    out = []
    for run in (base, cand):
        keep = [s for s in run.samples if (s["suite"], s["task"], s["sample_id"]) in order]
        if len(keep) < len(order):
            have = {(s["suite"], s["task"], s["sample_id"]) for s in keep}
            missing = [k for k in order if k not in have]
            suite, task, sid = missing[0]
            raise UserError(f"{run.path} lacks {len(missing)} of the {len(order)} samples the sequential run "
                            f"{owner.path} evaluated (first: {excerpt(suite, 40)}/{excerpt(task, 40)}/"
                            f"{excerpt(sid, 40)}); evaluate the baseline on those samples (eval --until-decided "
                            "does so on demand)")
        for s in keep:
            key = (s["suite"], s["task"], s["sample_id"])
            if prompt_sha(s.get("prompt")) != hashes[key]:
                raise UserError(f"the prompt of {excerpt(key[0], 40)}/{excerpt(key[1], 40)}/{excerpt(key[2], 40)} in "
                                f"{run.path} differs from the one the sequential run evaluated (prompt hash "
                                f"{prompt_sha(s.get('prompt'))[:12]} vs {hashes[key][:12]}): check chat template, "
                                "few-shot and generation settings")
        keep.sort(key=lambda s: order[(s["suite"], s["task"], s["sample_id"])])
        out.append(replace(run, samples=keep, _index={}))
    return out[0], out[1], block


# ---------------------------------------------------------------- items


def task_samples(run: Run, suite: str, task: str) -> dict[str, SampleRow]:
    return {s["sample_id"]: s for s in run.samples if s["suite"] == suite and s["task"] == task}


def originals(samples: dict[str, SampleRow]) -> dict[str, SampleRow]:
    clean = {k: s for k, s in samples.items() if not s.get("perturbation")}
    return clean or samples  # a task made only of perturbed samples is scored on all of them


def item_scores(samples: list[SampleRow], metric: str, fail_value: float | None, source: str | None = None) -> Scores:
    """Per-item mean of a metric; a null score is `fail_value` (or left out when there is none)."""
    values: dict[str, list[float]] = defaultdict(list)
    missing = rows = 0
    for s in samples:
        if metric not in s.get("scores", {}):
            continue
        value = s["scores"][metric]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"score '{metric}' of sample {s.get('sample_id')!r} is {str(value)[:40]!r}, not a number",
                            source=source)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            missing += 1
            if fail_value is None:
                continue
            value = fail_value
        rows += 1
        values[str(s.get("source_id") or s["sample_id"])].append(float(value))
    items = list(values)
    # one score per item is the common case: np.mean per item would dominate the cost of a large comparison
    means = [v[0] if len(v) == 1 else float(np.mean(v)) for v in (values[i] for i in items)]
    return Scores(items, np.array(means, dtype=float), missing, rows)


def _fail_value(bounds: tuple[float, float] | None, hib: bool) -> float | None:
    if bounds is None:
        return None
    return bounds[0] if hib else bounds[1]


def paired(sb: Scores, sc: Scores) -> tuple[np.ndarray, np.ndarray, list[str]]:
    index = {item: i for i, item in enumerate(sc.items)}
    common = [item for item in sb.items if item in index]
    pos_b = {item: i for i, item in enumerate(sb.items)}
    return (np.array([sb.values[pos_b[i]] for i in common], dtype=float),
            np.array([sc.values[index[i]] for i in common], dtype=float), common)


# ---------------------------------------------------------------- statistics of one metric


def own_score(scores: Scores, bounds: tuple[float, float] | None, binary: bool) -> Own | None:
    """A run's own mean with an interval that holds at its n."""
    if scores.values.size == 0:
        return None
    v = scores.values
    if binary:
        interval = stats.proportion_interval(int(v.sum()), int(v.size))
    else:
        interval = stats.mean_interval(v, bounds=bounds, min_n=2 if bounds else UNBOUNDED_MIN_N)
    return Own(float(v.mean()), interval, int(v.size), scores.missing)


# The test of a row whose metric has item-level scores but no item scored in both runs (a judge that parsed on
# different items in each, a first look): undecided, unlike a corpus-level metric, which has no items at all.
NO_PAIRED_ITEMS = "none: no paired items"


def metric_row(suite: str, task: str | None, metric: str, sb: Scores, sc: Scores, hib: bool,
               n_resamples: int, seed: int, sequential: bool = False, design: Design | None = None
               ) -> tuple[MetricComparison, tuple[np.ndarray, np.ndarray]]:
    """Paired statistics of one metric on item-level scores (sequential: the confidence sequence, in order,
    with the run's horizon design, center on the larger-is-better scale)."""
    b, c, common = paired(sb, sc)
    all_values = np.concatenate([sb.values, sc.values])
    bounds = metric_bounds(metric, all_values)
    binary = bool(all_values.size) and stats.is_binary(all_values)
    nb = nc = None
    raw = design if design is None or hib else design.flipped()  # the design on the scale of c - b
    if b.size == 0:
        interval, p, test = None, None, NO_PAIRED_ITEMS
    elif binary:
        nb, nc = stats.discordant(b, c)
        interval = delta_interval(b, c, True, bounds, sequential=sequential, design=raw)
        p, test = stats.mcnemar_exact(nb, nc), "exact McNemar"
    else:
        interval = delta_interval(b, c, False, bounds, n_resamples=n_resamples, seed=seed, sequential=sequential,
                                  design=raw)
        p, test = stats.sign_flip_pvalue(b, c, n_resamples=n_resamples, seed=seed), "sign-flip permutation"
    if sequential and b.size:  # a fixed-n test is not valid at a data-dependent n: only the sequence is shown
        p, test = None, "none: sequential run (judged by its confidence sequence)"
    w = np.asarray(design.weights) if design is not None and design.weights is not None else np.ones(b.size)
    row = MetricComparison(  # an active run: importance-weighted (unbiased) means over the task's population, and
        # the delta its sequence's own estimator gives (the difference estimator's, where it judges)
        suite, task, metric, float((w * b).mean()) if b.size else float("nan"),
        float((w * c).mean()) if c.size else float("nan"), term_mean(c - b, raw),
        interval, int(b.size), bool(b.size), binary, hib, bounds,
        test, p, None, nb, nc, own_score(sb, bounds, binary), own_score(sc, bounds, binary),
        len(sb.items) - len(common), len(sc.items) - len(common))
    return row, (b, c)


def corpus_row(suite: str, task: str | None, metric: str, mb: dict | None, mc: dict | None,
               hib: bool) -> MetricComparison | None:
    """A corpus-level metric (no per-sample scores): each run's aggregate and its recorded interval."""
    if not mb or not mc:
        return None

    def own(m: dict) -> Own:
        ci = m.get("ci95")
        n = int(m.get("n") or 0)
        interval = Interval(None, None, "as recorded in results.json", n, "no interval recorded")
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
            if float(ci[0]) < float(ci[1]):
                interval = Interval(float(ci[0]), float(ci[1]), "as recorded in results.json", n)
        return Own(float(m["value"]), interval, n)

    vb, vc = float(mb["value"]), float(mc["value"])
    return MetricComparison(suite, task, metric, vb, vc, vc - vb, None, 0, False, False, hib, None,
                            "none: corpus-level metric, no paired test applies", None, base_own=own(mb),
                            cand_own=own(mc))


def flips(suite: str, task: str, metric: str, ob: dict[str, SampleRow], oc: dict[str, SampleRow],
          higher_is_better: bool = True) -> list[Flip]:
    """Samples whose 0/1 score changed; a fall is a regression only where higher is better."""
    out = []
    for key in ob:
        if key not in oc:
            continue
        b, c = ob[key], oc[key]
        sb, sc = b.get("scores", {}).get(metric), c.get("scores", {}).get(metric)
        if sb is None or sc is None or sb == sc:
            continue
        worse = sb > sc if higher_is_better else sc > sb
        out.append(Flip(suite, task, b["sample_id"], metric, "right→wrong" if worse else "wrong→right",
                        b.get("prompt", ""), b.get("target"), b.get("response"), c.get("response"),
                        b.get("perturbation")))
    return out


# ---------------------------------------------------------------- robustness


def worst_case(samples: list[SampleRow], metric: str, hib: bool, fail: float | None) -> tuple[Scores, Scores]:
    """Per item: the clean score and the worst score over the original and all its perturbed versions."""
    clean = item_scores([s for s in samples if not s.get("perturbation")], metric, fail)
    sign = 1.0 if hib else -1.0
    worst: dict[str, float] = {}
    for s in samples:
        v = s.get("scores", {}).get(metric, "absent")
        if v == "absent":
            continue
        v = fail if v is None else float(v)
        if v is None:
            continue
        src = str(s.get("source_id") or s["sample_id"])
        worst[src] = v if src not in worst else sign * min(sign * worst[src], sign * v)
    items = [i for i in clean.items if i in worst]
    return clean, Scores(items, np.array([worst[i] for i in items], dtype=float))


def robustness_row(suite: str, task: str | None, metric: str, sb: list[SampleRow], sc: list[SampleRow], hib: bool,
                   bounds: tuple[float, float] | None) -> RobustnessRow | None:
    perts = sorted({p for s in sb if (p := s.get("perturbation"))})
    if not perts:
        return None
    fail = _fail_value(bounds, hib)
    per: dict[str, tuple[float, float]] = {}
    for pert in perts:
        pb = item_scores([s for s in sb if s.get("perturbation") == pert], metric, fail)
        pc = item_scores([s for s in sc if s.get("perturbation") == pert], metric, fail)
        if pb.values.size and pc.values.size:
            per[pert] = (float(pb.values.mean()), float(pc.values.mean()))
    (clean_b, worst_b), (clean_c, worst_c) = worst_case(sb, metric, hib, fail), worst_case(sc, metric, hib, fail)
    if not worst_b.values.size or not worst_c.values.size:
        return None
    sign = 1.0 if hib else -1.0

    def drops(clean: Scores, worst: Scores) -> np.ndarray:
        pos = {item: i for i, item in enumerate(clean.items)}
        return np.array([sign * (clean.values[pos[i]] - worst.values[k]) for k, i in enumerate(worst.items)])

    db, dc = drops(clean_b, worst_b), drops(clean_c, worst_c)
    return RobustnessRow(suite, task, metric, (float(clean_b.values.mean()), float(clean_c.values.mean())),
                         (float(worst_b.values.mean()), float(worst_c.values.mean())), per, int(dc.size), "samples",
                         hib, (db, dc), stats.is_binary(np.concatenate([db, dc])))


def robustness_from_results(suite: str, task: str, tb: dict, tc: dict, runs: tuple[Run, Run]) -> list[RobustnessRow]:
    """Robustness from results.json aggregates, for runs whose samples hold no perturbed rows."""
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
                                      int(mb.get("n") or 0), "results", metric_direction(runs, suite, task, metric)))
    return rows


# ---------------------------------------------------------------- one suite, one task


@dataclass
class _TaskResult:
    rows: list[MetricComparison]
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]]
    flips: list[Flip]
    robustness: list[RobustnessRow]
    incomplete: tuple[int, int]
    samples: tuple[list[SampleRow], list[SampleRow]]  # every row of the task, for suite-level pooling
    designs: dict[Key, Design] = field(default_factory=dict)  # an active run's, per metric


def metric_names(tasks: list[dict[str, Any]], samples: Sequence[Mapping[str, Any]]) -> tuple[list[str], set[str]]:
    """All metric names of a task, in its results' order (the first is the headline a rule without `metric`
    judges), and those with per-sample scores. The order comes from the first run that lists the task's metrics:
    a run that holds no answers for the task yet (the demo's shared base) lists none."""
    per_sample = {m for s in samples for m in s.get("scores", {})}
    names: list[str] = []
    for task in tasks:
        names += [m for m in task.get("metrics", {}) if m not in names]
    names += sorted(m for m in per_sample if m not in names)
    return names, per_sample


def compare_task(runs: tuple[Run, Run], suite: str, task: str, n_resamples: int, seed: int,
                 sequential: bool = False, block: dict[str, Any] | None = None, planned: Planned | None = None
                 ) -> _TaskResult:
    """One task's rows. planned: for an active run, the complete run its draws were planned against."""
    base, cand = runs
    sb, sc = task_samples(base, suite, task), task_samples(cand, suite, task)
    tb, tc = base.suites[suite]["tasks"][task], cand.suites[suite]["tasks"][task]
    ob, oc = originals(sb), originals(sc)
    names, per_sample = metric_names([tb, tc], list(sb.values()) + list(sc.values()))
    rows: list[MetricComparison] = []
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    task_flips: list[Flip] = []
    robust: list[RobustnessRow] = []
    designs: dict[Key, Design] = {}
    for metric in names:
        hib = metric_direction(runs, suite, task, metric)
        if metric not in per_sample:
            row = corpus_row(suite, task, metric, tb["metrics"].get(metric), tc["metrics"].get(metric), hib)
            if row is not None:
                rows.append(row)
            continue
        sb_scores = item_scores(list(ob.values()), metric, None, f"{base.path}/samples.jsonl")
        sc_scores = item_scores(list(oc.values()), metric, None, f"{cand.path}/samples.jsonl")
        fail = _fail_value(metric_bounds(metric, np.concatenate([sb_scores.values, sc_scores.values])), hib)
        drawn = sequential and is_active(block)
        eb, ec = (expand_draws(ob, block or {}, suite, task), expand_draws(oc, block or {}, suite, task)) \
            if drawn else (ob, oc)
        ib, ic = item_scores(list(eb.values()), metric, fail), item_scores(list(ec.values()), metric, fail)
        design = sequential_design(block, suite, [task]) if sequential else None
        exact = None
        if drawn:
            b, c, _ = paired(ib, ic)
            if b.size and stats.is_binary(np.concatenate([b, c])):  # the difference estimator, where recorded
                design, exact = task_design(design, block or {}, suite, task, metric, c - b, planned, fail, hib)
            if design is not None:
                designs[(suite, task, metric)] = design
        row, arrays = metric_row(suite, task, metric, ib, ic, hib, n_resamples, seed, sequential, design)
        if exact is not None:  # the planned run's mean over the population is known: the other is estimated
            row.base, row.cand = (exact - row.delta, exact) if planned and planned.is_candidate else \
                (exact, exact + row.delta)
        rows.append(row)
        pairs[(suite, task, metric)] = arrays
        if row.binary and not task_flips:
            task_flips = flips(suite, task, metric, ob, oc, hib)
        rob = robustness_row(suite, task, metric, list(sb.values()), list(sc.values()), hib, row.bounds)
        if rob is not None:
            robust.append(rob)
    if not any(r.source == "samples" for r in robust):
        robust += robustness_from_results(suite, task, tb, tc, runs)
    return _TaskResult(rows, pairs, task_flips, robust, (len(sb.keys() - sc.keys()), len(sc.keys() - sb.keys())),
                       (list(sb.values()), list(sc.values())), designs)


def _pooled(samples: list[SampleRow]) -> list[SampleRow]:
    """Rows of several tasks with item ids made unique per task."""
    return [{**s, "source_id": f"{s['task']}\x00{s.get('source_id') or s['sample_id']}"} for s in samples]


def compare_suite(runs: tuple[Run, Run], suite: str, tasks: list[_TaskResult], n_resamples: int,
                  seed: int, seq_order: dict[SampleKey, int] | None = None,
                  mixed: dict[tuple[str, str], dict[str, bool]] | None = None, block: dict[str, Any] | None = None
                  ) -> tuple[list[MetricComparison], dict[Key, tuple[np.ndarray, np.ndarray]], list[RobustnessRow]]:
    """Suite rows: per-sample metrics pooled over the tasks that report them (micro); corpus metrics as recorded.

    seq_order: a sequential run's evaluation order, in which pooled items then enter the confidence sequence.
    mixed: filled with the metrics whose tasks differ in direction; they get no pooled row."""
    mixed = {} if mixed is None else mixed
    sres_b, sres_c = runs[0].suites[suite], runs[1].suites[suite]
    order = list(sres_b.get("metrics") or {})
    for t in tasks:
        order += [r.metric for r in t.rows if r.metric not in order]
    rows: list[MetricComparison] = []
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    robust: list[RobustnessRow] = []
    all_b = _pooled([s for t in tasks for s in t.samples[0]])
    all_c = _pooled([s for t in tasks for s in t.samples[1]])
    if seq_order is not None:
        for pooled in (all_b, all_c):
            pooled.sort(key=lambda s: seq_order[(s["suite"], s["task"], s["sample_id"])])
    for metric in order:
        if is_active(block):  # an active run estimates each task by its own draws: no pooled row exists
            break
        members = [r for t in tasks for r in t.rows if r.metric == metric and r.paired]
        hib = metric_direction(runs, suite, None, metric)
        if not members:
            row = corpus_row(suite, None, metric, (sres_b.get("metrics") or {}).get(metric),
                             (sres_c.get("metrics") or {}).get(metric), hib)
            if row is not None:
                rows.append(row)
            continue
        directions = {str(r.task): r.higher_is_better for r in members}
        if len(set(directions.values())) > 1:
            mixed[(suite, metric)] = directions
            continue
        bounds = members[0].bounds
        fail = _fail_value(bounds, hib)
        member_tasks = tuple(str(r.task) for r in members)
        ob = [s for s in all_b if not s.get("perturbation") and s["task"] in member_tasks]
        oc = [s for s in all_c if not s.get("perturbation") and s["task"] in member_tasks]
        row, arrays = metric_row(suite, None, metric, item_scores(ob, metric, fail), item_scores(oc, metric, fail),
                                 hib, n_resamples, seed, seq_order is not None,
                                 sequential_design(block, suite, member_tasks) if seq_order is not None else None)
        row.tasks = member_tasks
        rows.append(row)
        pairs[(suite, None, metric)] = arrays
        if metric == order[0] or not robust:
            rob = robustness_row(suite, None, metric, [s for s in all_b if s["task"] in member_tasks],
                                 [s for s in all_c if s["task"] in member_tasks], hib, bounds)
            if rob is not None:
                robust.append(rob)
    return rows, pairs, robust


def apply_holm(rows: list[MetricComparison]) -> None:
    """Holm–Bonferroni across the suites compared, separately for each metric name (display only)."""
    by_metric: dict[str, list[MetricComparison]] = defaultdict(list)
    for row in rows:
        if row.task is None and row.p_value is not None:
            by_metric[row.metric].append(row)
    for family in by_metric.values():
        for row, adjusted in zip(family, stats.holm([float(r.p_value or 0.0) for r in family])):
            row.p_holm = adjusted


# ---------------------------------------------------------------- the entry point


def compare_runs(baseline: Run, candidate: Run, *, n_resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Paired comparison of candidate against baseline, aligned by (suite, task, item).

    When either run is sequential (evaluated until decided), both are paired on the samples it evaluated and
    every paired interval is the confidence sequence of `harness.inference.sequential`, never a fixed-n interval."""
    loaded = (baseline, candidate)
    baseline, candidate, block = restrict_sequential(baseline, candidate)
    order = sequential_order(block) if block else None
    common, only_b, only_c = check_compatible(baseline, candidate, per_sample=block is not None)
    runs = (baseline, candidate)
    rows: list[MetricComparison] = []
    pairs: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    all_flips: list[Flip] = []
    robust: list[RobustnessRow] = []
    incomplete: dict[tuple[str, str], tuple[int, int]] = {}
    mixed: dict[tuple[str, str], dict[str, bool]] = {}
    designs: dict[Key, Design] = {}
    planned = planned_against(loaded) if block else None
    for suite in common:
        tasks = [compare_task(runs, suite, task, n_resamples, seed, block is not None, block, planned)
                 for task in baseline.suites[suite]["tasks"]]
        suite_rows, suite_pairs, suite_robust = compare_suite(runs, suite, tasks, n_resamples, seed, order, mixed,
                                                              block)
        rows += suite_rows + [r for t in tasks for r in t.rows]
        pairs.update(suite_pairs)
        robust += suite_robust
        for name, t in zip(baseline.suites[suite]["tasks"], tasks):
            pairs.update(t.pairs)
            designs.update(t.designs)
            all_flips += t.flips
            robust += t.robustness
            if any(t.incomplete):
                incomplete[(suite, name)] = t.incomplete
    apply_holm(rows)
    return Comparison(loaded[0], loaded[1], rows, all_flips, robust, only_b, only_c, incomplete, n_resamples, seed, pairs, block,
                      (baseline, candidate) if block else None, backends_note(baseline, candidate), mixed, designs)
