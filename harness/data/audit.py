"""Data audit: duplicates, empty and over-long rows, label balance, and train/test contamination.

Contamination follows the GPT-3 paper (Brown et al., 2020, appendix C): a test item is contaminated
when any 13-gram of its words also occurs in the training data (an item shorter than 13 words counts
when its whole word sequence does). Near duplicates are pairs whose word 5-gram sets have a Jaccard
similarity at or above a declared threshold, found with MinHash and banded LSH, then checked exactly.

For a suite, only the row fields its templates use are compared (never the template text itself, which
every row shares), and duplicates are looked for within each task.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from jinja2 import meta

from harness.core.api import UserError
from harness.core.fileio import atomic_write_text as atomic_write
from harness.data.suite import DATA_SUFFIXES, SUITE_FILE, Suite, Task, load_suite, read_rows

NGRAM = 13
SHORT_MIN_WORDS = 5  # shorter test items are too generic to call contaminated by themselves
SHINGLE = 5
PERMUTATIONS, BANDS = 128, 32
LABEL_FIELDS = ("label", "answer", "target", "final_decision", "response", "completion")
_PRIME = (1 << 61) - 1


@dataclass
class Item:
    """One row reduced to the text an audit compares."""

    ref: str  # where it comes from: "suite/task/split#row" or "file#line"
    group: str  # duplicates are looked for within one group (a suite's task and split, or the file)
    text: str
    label: str | None = None
    words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.words = re.findall(r"\w+", self.text.lower())


@dataclass
class AuditSettings:
    """Declared thresholds; the report prints them next to the numbers."""

    threshold: float = 0.0  # largest tolerated fraction of contaminated test items
    near_threshold: float = 0.8  # Jaccard similarity of word 5-grams that counts as a near duplicate
    max_chars: int = 20_000
    ngram: int = NGRAM
    text_fields: list[str] | None = None  # for files: the columns holding text (default: all strings)
    label_field: str | None = None


# ---- reading ----------------------------------------------------------------------------------------------

def template_fields(task: Task) -> list[str]:
    """Row columns the task's prompt, choices and target use."""
    env = jinja2.Environment()
    sources = [task.spec.prompt] + [f"{{{{ {e} }}}}" for e in (task.spec.target, task.spec.choices)
                                    if isinstance(e, str)]
    sources += [c for c in task.spec.choices or [] if isinstance(task.spec.choices, list)]
    names: set[str] = set()
    for source in sources:
        names |= meta.find_undeclared_variables(env.parse(source))
    return sorted(names)


def _flatten(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_flatten(v) for v in value.values())
    return "" if value is None else str(value)


def suite_items(suite: Suite) -> dict[str, list[Item]]:
    """A suite's rows by role: `train` (every split that is not evaluated) and `test` (the evaluated one)."""
    out: dict[str, list[Item]] = {"train": [], "test": []}
    for task in suite.tasks:
        fields = template_fields(task)
        for split, rows in task.rows.items():
            role = "test" if split == task.spec.split else "train"
            for i, row in enumerate(rows):
                text = " ".join(_flatten(row.get(f)) for f in fields if f in row)
                if task.spec.lmeval is not None:  # an lm-eval task: its doc_to_decontamination_query
                    text = str(row["lmeval__"]["query"])
                out[role].append(Item(f"{suite.name}/{task.name}/{split}#{i + 1}", f"{task.name}/{split}", text,
                                      _suite_label(task, row)))
    return out


def _suite_label(task: Task, row: dict[str, Any]) -> str | None:
    if task.spec.kind != "multiple_choice" and not task.spec.rubric:
        return None
    if task.spec.rubric and task.spec.rubric.expect_field in row:
        return str(row[task.spec.rubric.expect_field])
    try:
        choices = task.render_choices(row)
        target = task.render_target(row, choices)
    except (jinja2.TemplateError, ValueError, TypeError):
        return None
    return choices[target] if choices and isinstance(target, int) else _flatten(target)


def file_items(path: Path, settings: AuditSettings) -> list[Item]:
    """Rows of a jsonl, json, csv or tsv training file."""
    rows = read_rows(path, "DATA")
    label = settings.label_field or next((f for f in LABEL_FIELDS if f in rows[0]), None)
    if settings.label_field and settings.label_field not in rows[0]:
        raise UserError(f"no column {settings.label_field!r} (columns: {', '.join(rows[0])})", field="--label")
    items = []
    for i, row in enumerate(rows):
        fields = settings.text_fields or [k for k, v in row.items() if isinstance(v, (str, list, dict))]
        missing = [f for f in fields if f not in row]
        if missing:
            raise UserError(f"row {i + 1} has no column {missing[0]!r}", source=str(path), field="--field")
        items.append(Item(f"{path.name}#{i + 1}", path.name, " ".join(_flatten(row[f]) for f in fields),
                          _flatten(row[label]) if label and label in row else None))
    return items


def is_suite_ref(ref: str) -> bool:
    """A suite directory, a suite.yaml, or the name of a built-in suite (not a data file)."""
    path = Path(ref)
    if path.suffix in DATA_SUFFIXES:
        return False
    return (path / SUITE_FILE).is_file() or path.name == SUITE_FILE or not path.exists()


# ---- checks ----------------------------------------------------------------------------------------------

def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def exact_duplicates(items: list[Item]) -> list[list[str]]:
    """Groups of refs whose normalised text is identical (within one group)."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        if item.words:
            seen[(item.group, " ".join(item.words))].append(item.ref)
    return [refs for refs in seen.values() if len(refs) > 1]


def _minhash(shingles: set[tuple[str, ...]], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # crc32, not hash(): str hashes change between processes, and the audit must be reproducible
    hashes = np.array([zlib.crc32(" ".join(s).encode("utf-8")) for s in shingles], dtype=np.uint64)
    return ((np.outer(hashes, a) + b) % _PRIME).min(axis=0)


def near_duplicates(items: list[Item], threshold: float, seed: int = 1) -> list[tuple[str, str, float]]:
    """Pairs within one group whose word 5-gram Jaccard similarity is >= threshold (not exact copies)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, _PRIME, PERMUTATIONS, dtype=np.uint64)
    shingles = [ngrams(it.words, SHINGLE) or ({tuple(it.words)} if it.words else set()) for it in items]
    buckets: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    rows = PERMUTATIONS // BANDS
    for i, (item, sh) in enumerate(zip(items, shingles)):
        if sh:
            sig = _minhash(sh, a, b)
            for band in range(BANDS):
                buckets[(item.group, band, sig[band * rows:(band + 1) * rows].tobytes())].append(i)
    pairs: dict[tuple[int, int], float] = {}
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if (i, j) not in pairs:
                    pairs[(i, j)] = len(shingles[i] & shingles[j]) / len(shingles[i] | shingles[j])
    return sorted((items[i].ref, items[j].ref, round(sim, 3)) for (i, j), sim in pairs.items()
                  if sim >= threshold and items[i].words != items[j].words)


def contamination(train: list[Item], test: list[Item], n: int = NGRAM) -> list[dict[str, Any]]:
    """Test items sharing an n-gram with the training items (whole sequence for short items)."""
    index: dict[tuple[str, ...], str] = {}
    for item in train:
        for gram in ngrams(item.words, n):
            index.setdefault(gram, item.ref)
    joined = [(f" {' '.join(item.words)} ", item.ref) for item in train]
    hits = []
    for item in test:
        if len(item.words) >= n:
            match = next((index[g] for g in ngrams(item.words, n) if g in index), None)
        elif len(item.words) >= SHORT_MIN_WORDS:
            needle = f" {' '.join(item.words)} "
            match = next((ref for text, ref in joined if needle in text), None)
        else:
            match = None
        if match:
            hits.append({"test": item.ref, "train": match})
    return hits


def label_balance(items: list[Item]) -> dict[str, dict[str, int]]:
    by_group: dict[str, Counter] = defaultdict(Counter)
    for item in items:
        if item.label is not None:
            by_group[item.group][item.label] += 1
    return {group: dict(counts.most_common()) for group, counts in sorted(by_group.items())}


# ---- the audit ---------------------------------------------------------------------------------------------

def audit(data: str, against: Iterable[str] = (), settings: AuditSettings | None = None) -> dict[str, Any]:
    """Audit DATA (a suite: its own train vs test; or a data file) and its overlap with other suites' tests."""
    settings = settings or AuditSettings()
    if is_suite_ref(data):
        parts = suite_items(load_suite(data))
        train, test, kind = parts["train"], parts["test"], "suite"
    else:
        train, test, kind = file_items(Path(data), settings), [], "file"
    for ref in against:
        test += suite_items(load_suite(ref))["test"]
    own = train + (test if kind == "suite" else [])
    hits = contamination(train, test, settings.ngram) if train and test else []
    rate = len(hits) / len(test) if test else 0.0
    return {
        "data": data, "kind": kind, "against": list(against), "rows": len(own), "train_rows": len(train),
        "test_rows": len(test),
        "settings": {"threshold": settings.threshold, "near_threshold": settings.near_threshold,
                     "max_chars": settings.max_chars, "ngram": settings.ngram},
        "exact_duplicates": exact_duplicates(own),
        "near_duplicates": near_duplicates(own, settings.near_threshold),
        "empty": [it.ref for it in own if not it.text.strip()],
        "over_long": [it.ref for it in own if len(it.text) > settings.max_chars],
        "label_balance": label_balance(own),
        "contaminated": hits, "contamination_rate": rate,
        "passed": rate <= settings.threshold,
    }


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable summary of `audit`'s report."""
    s = report["settings"]
    lines = [f"audit of {report['data']} ({report['kind']}): {report['rows']} rows, "
             f"{report['train_rows']} train, {report['test_rows']} test"
             + (f" (against {', '.join(report['against'])})" if report["against"] else "")]
    lines.append(f"exact duplicates: {len(report['exact_duplicates'])} groups")
    lines += [f"  {' = '.join(g[:4])}" for g in report["exact_duplicates"][:10]]
    lines.append(f"near duplicates (word {SHINGLE}-gram Jaccard >= {s['near_threshold']}): "
                 f"{len(report['near_duplicates'])} pairs")
    lines += [f"  {a} ~ {b} ({sim})" for a, b, sim in report["near_duplicates"][:10]]
    lines.append(f"empty rows: {len(report['empty'])}" + (f" ({', '.join(report['empty'][:5])})" if report["empty"] else ""))
    lines.append(f"over-long rows (> {s['max_chars']} chars): {len(report['over_long'])}")
    for group, counts in list(report["label_balance"].items())[:40]:
        total = sum(counts.values())
        lines.append(f"labels {group}: " + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in counts.items()))
    lines.append(f"train/test {s['ngram']}-gram contamination: {len(report['contaminated'])} of "
                 f"{report['test_rows']} test rows ({report['contamination_rate']:.2%}; threshold {s['threshold']:.2%})")
    lines += [f"  {h['test']} <- {h['train']}" for h in report["contaminated"][:20]]
    lines.append("PASS" if report["passed"] else "FAIL: contamination above the threshold")
    return "\n".join(lines)


def run_audit(data: str, against: list[str], settings: AuditSettings, json_out: Path | None = None) -> int:
    """The `tunegate data audit` command: print the report, optionally write JSON; 0 pass, 1 contaminated."""
    import json

    report = audit(data, against, settings)
    print(format_report(report), file=sys.stdout)
    if json_out is not None:
        atomic_write(json_out, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0 if report["passed"] else 1
