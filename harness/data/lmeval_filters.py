"""lm-evaluation-harness's answer pipeline for generate tasks: its built-in filters and exact_match options.

Each function here reproduces the lm-eval 0.4.13 filter of the same name (lm_eval/filters/*.py) on one
sample's responses, so a task file's `filter_list` scores as it does in lm-eval. A filter that is not here
is refused by name when the task file is read (`check_filters`).
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness.core.api import UserError

Step = Callable[[list[str], dict[str, Any]], list[str]]


def _regex(args: dict[str, Any]) -> Step:
    """`regex`: the `group_select`-th of all matches (its first non-empty group), stripped; else the fallback."""
    pattern = re.compile(str(args.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")))
    select, fallback = int(args.get("group_select", 0)), str(args.get("fallback", "[invalid]"))

    def one(resp: str) -> str:
        found = pattern.findall(resp if isinstance(resp, str) else "")
        if not found:
            return fallback
        try:
            match = found[select]
        except IndexError:  # lm-eval would raise here; an out-of-range selection is no answer
            return fallback
        if isinstance(match, tuple):
            match = next((m for m in match if m), fallback)
        return str(match).strip()

    return lambda resps, doc: [one(r) for r in resps]


@functools.cache
def _punctuation() -> dict[int, None]:
    """Every Unicode punctuation code point (lm-eval's multi_choice_regex strips these)."""
    return dict.fromkeys(i for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P"))


def _multi_choice_regex(args: dict[str, Any]) -> Step:
    """`multi_choice_regex`: the regex; else a choice's text found in the response, as its letter "(A)"; else
    ": A" as "(A)"; else the fallback. The document's `choices` name the letters."""
    pattern = re.compile(str(args.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")))
    select, fallback = int(args.get("group_select", 0)), str(args.get("fallback", "[invalid]"))

    def ignores(text: str) -> str:
        for ignored in args.get("regexes_to_ignore") or []:
            text = re.sub(ignored, "", text)
        text = text.lower() if args.get("ignore_case") else text
        return text.translate(_punctuation()) if args.get("ignore_punctuation") else text

    def find(regex: re.Pattern[str], resp: str, convert: dict[str, str]) -> str:
        found = regex.findall(resp)
        if not found:
            return ""
        try:
            match = found[select]
        except IndexError:
            return ""
        if isinstance(match, tuple):
            match = next((m for m in match if m), "")
        match = str(match).strip()
        return convert.get(match, match) if match else match

    def step(resps: list[str], doc: dict[str, Any]) -> list[str]:
        letters = [chr(ord("A") + i) for i in range(len(doc.get("choices") or []))]
        texts = [ignores(str(c).strip()) for c in doc.get("choices") or []]
        to_letter = {t: f"({a})" for t, a in zip(texts, letters)}
        by_text = re.compile("|".join(sorted((re.escape(t) for t in texts), key=len, reverse=True)))
        by_colon = re.compile(rf":[\s]*({'|'.join(letters)})")
        out = []
        for resp in resps:
            resp = resp if isinstance(resp, str) else ""
            match = (find(pattern, resp, {}) or find(by_text, ignores(resp), to_letter)
                     or find(by_colon, resp, {a: f"({a})" for a in letters}))
            out.append(match or fallback)
        return out

    return step


def _take_first_k(args: dict[str, Any]) -> Step:
    k = int(args["k"])
    return lambda resps, doc: resps[:k]


def _majority(args: dict[str, Any]) -> Step:
    # Counter.most_common keeps first-seen order among ties, as lm-eval's MajorityVoteFilter does
    return lambda resps, doc: [Counter(resps).most_common(1)[0][0]] if resps else resps


FILTERS: dict[str, Callable[[dict[str, Any]], Step]] = {
    "regex": _regex,
    "multi_choice_regex": _multi_choice_regex,
    "take_first": lambda args: lambda resps, doc: resps[:1],
    "take_first_k": _take_first_k,
    "majority_vote": _majority,
    "lowercase": lambda args: lambda resps, doc: [r.lower() for r in resps],
    "uppercase": lambda args: lambda resps, doc: [r.upper() for r in resps],
    "remove_whitespace": lambda args: lambda resps, doc: [r.strip() for r in resps],
}
ARGS = {"regex": {"regex_pattern", "group_select", "fallback"}, "take_first_k": {"k"},
        "multi_choice_regex": {"regex_pattern", "group_select", "fallback", "ignore_case", "ignore_punctuation",
                               "regexes_to_ignore"}}


def check_filters(filter_list: Any, src: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """A task file's `filter_list` as (name, steps); an unknown filter or option is one UserError naming it."""
    if not isinstance(filter_list, list) or not filter_list:
        raise UserError("must be a list of {name, filter} entries", source=src, field="filter_list")
    out = []
    for i, entry in enumerate(filter_list):
        if not isinstance(entry, dict) or not isinstance(entry.get("filter"), list):
            raise UserError("each entry needs a name and a filter list", source=src, field=f"filter_list[{i}]")
        steps = []
        for j, step in enumerate(entry["filter"]):
            where = f"filter_list[{i}].filter[{j}]"
            name = step.get("function") if isinstance(step, dict) else None
            if name not in FILTERS:
                raise UserError(f"filter {name!r} is not supported (supported: {', '.join(sorted(FILTERS))})",
                                source=src, field=f"{where}.function")
            extra = set(step) - {"function"} - ARGS.get(name, set())
            if extra:
                raise UserError(f"option of filter {name} not supported", source=src, field=f"{where}.{sorted(extra)[0]}")
            if name in ("regex", "multi_choice_regex"):
                try:
                    for pattern in [step.get("regex_pattern", ""), *(step.get("regexes_to_ignore") or [])]:
                        re.compile(str(pattern))
                except re.error as exc:
                    raise UserError(f"bad regex: {exc}", source=src, field=f"{where}.regex_pattern") from None
            steps.append(dict(step))
        out.append((str(entry.get("name", f"filter{i}")), steps))
    return out


def apply(steps: list[dict[str, Any]], responses: list[str], doc: dict[str, Any]) -> str:
    """The filtered answer of one sample: the pipeline over its responses, then the first (lm-eval keeps one)."""
    resps = list(responses)
    for step in steps:
        resps = FILTERS[step["function"]]({k: v for k, v in step.items() if k != "function"})(resps, doc)
    return resps[0] if resps else ""


def exact_match(prediction: str, references: list[str], options: dict[str, Any]) -> float:
    """lm-eval's exact_match (HF evaluate's): the options applied to both sides, then equality with any reference."""
    def norm(text: str) -> str:
        for pattern in options.get("regexes_to_ignore") or []:
            text = re.sub(pattern, "", text)
        if options.get("ignore_case"):
            text = text.lower()
        if options.get("ignore_punctuation"):
            text = text.translate(str.maketrans("", "", string.punctuation))
        if options.get("ignore_numbers"):
            text = text.translate(str.maketrans("", "", string.digits))
        return text

    pred = norm(prediction)
    return float(any(pred == norm(ref) for ref in references))
