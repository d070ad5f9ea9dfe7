"""Model-graded scoring: a judge backend grades each response with the task's rubric template.

- The response is untrusted: it is fenced between two lines carrying a nonce derived from the response
  itself, and any text in it that looks like a fence is removed first, so a response can neither close
  its fence nor open a new one. A response that contains the judge's own output format ("Score: 5")
  or a fence look-alike is flagged as an injection attempt in its record (`judge_injection`).
- The judge's answer is parsed strictly: exactly one `Key: value` line, whose value is an integer on the
  declared scale or one of the declared labels. Anything else is recorded as unparseable, with why, and
  counted (`judge_unparsed`); it never becomes a default score.
- Judge answers live in the store's response cache under the judge model's fingerprint, the rendered
  rubric (so the template's hash) and the generation settings: a re-run with the same judge costs
  nothing, and a changed rubric re-judges only the prompts whose rendering it changed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.api import (
    Backend,
    GenSettings,
    Request,
    Response,
    ResponseCache,
    SampleRecord,
    UserError,
    sha256_json,
)
from harness.core.config import load_yaml
from harness.core.fileio import tunegate_home
from harness.core.untrusted import TemplateLimit, render_bounded
from harness.data.suite import JudgeSpec, Suite, check_judge_template

# "<<<RESPONSE …>>>", "<<< END RESPONSE …>>>", "<<</response>>>" and the like, in any case
FENCE_LIKE = re.compile(r"<{2,}\s*/?\s*(?:end[\s_-]*)?(?:response|answer)\b[^<>\n]{0,80}>{2,}", re.IGNORECASE)
FENCE_REMOVED = "[fence-like text removed]"
OVERRIDE = re.compile(r"\b(ignore|disregard)\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier)\s+"
                      r"(instructions|rules|rubric)", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """One judge answer, parsed: `value` (normalised score in [0, 1]) or `error` saying why not."""

    value: float | None
    raw: str | None  # the value as the judge wrote it
    error: str | None


def fence(response: str, salt: str) -> tuple[str, str]:
    """The response between two nonce lines it cannot forge, and the nonce. Fence look-alikes in the
    response are removed first; the nonce hashes the cleaned text, so a response cannot contain it."""
    clean = FENCE_LIKE.sub(FENCE_REMOVED, response)
    nonce = hashlib.sha256(f"{salt}\0{clean}".encode()).hexdigest()[:16]
    return f"<<<RESPONSE {nonce}>>>\n{clean}\n<<<END RESPONSE {nonce}>>>", nonce


def _key_line(key: str) -> re.Pattern[str]:
    # "Score: 4", "**Score:** 4", "score = 4" on a line of its own
    return re.compile(rf"^[ \t>*_#-]*{re.escape(key)}[ \t*_]*[:=][ \t*_]*(.*?)[ \t*_.]*$", re.IGNORECASE | re.MULTILINE)


def parse(answer: str, spec: JudgeSpec) -> Parsed:
    """Strict: exactly one `Key: value` line, its value an integer on the scale or a declared label."""
    found = _key_line(spec.output_key).findall(answer)
    if not found:
        return Parsed(None, None, f"no '{spec.output_key}:' line")
    if len(found) > 1:
        return Parsed(None, None, f"{len(found)} '{spec.output_key}:' lines (exactly one is allowed)")
    raw = found[0].strip()
    if spec.scale is not None:
        lo, hi = spec.scale
        if not re.fullmatch(r"[+-]?\d+", raw):
            return Parsed(None, raw, f"'{raw[:40]}' is not an integer from {lo} to {hi}")
        value = int(raw)
        if not lo <= value <= hi:
            return Parsed(None, raw, f"{value} is off the scale {lo}–{hi}")
        return Parsed((value - lo) / (hi - lo), raw, None)
    labels = {k.lower(): v for k, v in (spec.labels or {}).items()}
    if raw.lower() not in labels:
        return Parsed(None, raw, f"'{raw[:40]}' is not one of the labels {', '.join(spec.labels or {})}")
    return Parsed(labels[raw.lower()], raw, None)


def injections(response: str, spec: JudgeSpec) -> list[str]:
    """Text in a response that imitates the judge's output format, a fence, or overrides its instructions."""
    key = re.compile(rf"\b{re.escape(spec.output_key)}\s*[:=]\s*\S+", re.IGNORECASE)
    hits = [m.group(0) for pattern in (key, FENCE_LIKE, OVERRIDE) for m in pattern.finditer(response)]
    return [h[:60] for h in dict.fromkeys(hits)]


def template_hash(spec: JudgeSpec) -> str:
    return sha256_json(spec.model_dump(mode="json"))[:16]


def render(spec: JudgeSpec, *, prompt: str, response: str, reference: str, axes: list[str]) -> tuple[str, str]:
    """The rubric prompt for one response (rendered in the sandbox) and the response's fence nonce."""
    fenced, nonce = fence(response, template_hash(spec))
    template = _compiled(spec.template)
    row = {"prompt": prompt, "response": fenced, "reference": reference, "axes": axes,
           "scale": list(spec.scale) if spec.scale else None, "labels": list(spec.labels or {}), "key": spec.output_key}
    try:
        text = render_bounded(template, row)  # a suite's rubric: bounded in CPU time and size like its prompts
    except TemplateLimit as exc:
        raise UserError(f"the judge template: {exc}", field="judge.template") from None
    return text, nonce


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> Any:
    return check_judge_template(text, "judge", "template")


def settings(spec: JudgeSpec, index: int) -> GenSettings:
    return GenSettings(spec.max_new_tokens, (), spec.temperature, 1.0, spec.seed + index)


def ask(judge: Backend, store: ResponseCache | None, prompts: list[tuple[str, GenSettings, bool, str]]) -> list[str]:
    """The judge's answers to (rubric, settings, chat-templated, prefill) prompts, through the cache: the key is
    the judge's fingerprint with the rubric text and settings, so no template or weights load on a hit."""
    fp = sha256_json(judge.fingerprint())
    keys = [sha256_json(["judge", fp, text, repr(gen), chat, prefill]) for text, gen, chat, prefill in prompts]
    known = store.cached(list(dict.fromkeys(keys))) if store is not None else {}
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        requests = []
        for i in missing:
            text, gen, chat, prefill = prompts[i]
            context = judge.apply_chat_template(text) if chat and "chat_template" in judge.capabilities else text
            requests.append(Request("generate", context + prefill, gen=gen))
        fresh = dict(zip((keys[i] for i in missing), judge.generate(requests)))
        if store is not None:
            store.add_cached([(k, Response(text=r.text, tokens_processed=r.tokens_processed))
                                       for k, r in fresh.items()])
        known = {**known, **fresh}
    return [prompts[i][3] + (known[k].text or "") for i, k in enumerate(keys)]


def grade(spec: JudgeSpec, judge: Backend, store: ResponseCache | None, records: list[SampleRecord], prompts: list[str],
          axes: list[str], role: str) -> None:
    """Judge each record's response `spec.samples` times; writes extra["judge"] and the judge metrics."""
    staged, nonces = [], []
    for rec, prompt in zip(records, prompts):
        text, nonce = render(spec, prompt=prompt, response=rec.response or "", reference=str(rec.target or ""),
                             axes=axes)
        nonces.append(nonce)
        staged += [(text, settings(spec, i), spec.chat_template, spec.prefill or "") for i in range(spec.samples)]
    answers = ask(judge, store, staged)
    fp = sha256_json(judge.fingerprint())[:16]
    for k, rec in enumerate(records):
        mine = answers[k * spec.samples:(k + 1) * spec.samples]
        parsed = [parse(a, spec) for a in mine]
        values = [p.value for p in parsed if p.value is not None]
        found = injections(rec.response or "", spec)
        info: dict[str, Any] = {
            "role": role, "model": judge.label, "fingerprint": fp, "template_hash": template_hash(spec),
            "nonce": nonces[k], "answers": mine, "parsed": [p.raw for p in parsed],
            "errors": [p.error for p in parsed], "values": [p.value for p in parsed],
            "score": sum(values) / len(values) if values else None,
            "unparsed": sum(p.value is None for p in parsed) / len(parsed),
            "injection": 1.0 if found else 0.0, "injection_found": found,
            "scale": list(spec.scale) if spec.scale else None, "labels": spec.labels, "human_axis": spec.human_axis,
        }
        rec.extra["judge"] = info
        for name, field in (("judge_score", "score"), ("judge_unparsed", "unparsed"), ("judge_injection", "injection")):
            if info[field] is not None:
                rec.scores[name] = float(info[field])
            else:
                rec.scores.pop(name, None)


# ---- binding roles to models ---------------------------------------------------------------------------------

def parse_bindings(values: list[str] | None) -> dict[str, str]:
    """`--judge ROLE=SPEC` options as a mapping (a role bound twice is an error)."""
    out: dict[str, str] = {}
    for value in values or []:
        role, sep, spec = value.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", role) or not spec.strip():
            raise UserError(f"expected ROLE=SPEC (e.g. grader=smollm2-135m), got {value!r}", field="--judge")
        if role in out:
            raise UserError(f"judge role {role!r} is bound twice", field="--judge")
        out[role] = spec.strip()
    return out


JUDGES_FILE = "judges.yaml"  # in $TUNEGATE_HOME: the user's own role bindings, e.g. `grader: smollm2-135m`


def configured_bindings(path: Path | None = None) -> dict[str, str]:
    """The user's own bindings (`$TUNEGATE_HOME/judges.yaml`, a mapping of role to model spec); {} if absent."""
    path = path or tunegate_home() / JUDGES_FILE
    if not path.is_file():
        return {}
    data, node = load_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", k)
                                             and isinstance(v, str) and v.strip() for k, v in data.items()):
        raise UserError("expected a mapping of judge role to model spec, e.g. `grader: smollm2-135m`",
                        source=str(path), line=1)
    return {k: v.strip() for k, v in data.items()}


def roles_needed(suites: list[Suite]) -> dict[str, tuple[str, str | None]]:
    """role -> (the first task that needs it, the model a suite suggests for it)."""
    out: dict[str, tuple[str, str | None]] = {}
    for suite in suites:
        for task in suite.tasks:
            j = task.spec.judge
            if j is not None:
                first, suggested = out.get(j.role, (f"{suite.name}/{task.name}", None))
                out[j.role] = (first, suggested or j.suggested_model)
    return out


def bind(suites: list[Suite], bindings: Mapping[str, str], **options: Any) -> tuple[dict[str, Backend], dict[str, str]]:
    """Judge backends for every role the suites need (bound on the command line, else in the user's
    judges.yaml, else the suite's suggestion), and the spec each came from; an unbound role without a
    suggestion is a UserError."""
    from harness.models import load_backend  # the models package sits to the right of the suites

    needed = roles_needed(suites)
    unused = sorted(set(bindings) - set(needed))  # the command line's bindings must be used
    bindings = {**{r: v for r, v in configured_bindings().items() if r in needed}, **bindings}
    if unused:
        raise UserError(f"judge role {unused[0]!r} is not used by any task of these suites (their roles: "
                        f"{', '.join(sorted(needed)) or 'none'})", field="--judge")
    backends, specs = {}, {}
    for role, (task, suggested) in needed.items():
        spec = bindings.get(role) or suggested
        if spec is None:
            raise UserError(f"task {task} is graded by judge role {role!r}, which is not bound; pass "
                            f"--judge {role}=MODEL (the embedded smollm2-135m, a local directory, fake:NAME, ...)",
                            field="--judge")
        backend = load_backend(spec, **options)
        if "generate" not in backend.capabilities:
            raise UserError(f"judge {role}={spec}: backend {backend.label} cannot generate", field="--judge")
        backends[role], specs[role] = backend, spec
    return backends, specs
