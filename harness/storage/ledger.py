"""The release ledger: every evaluated or gated run, every verdict, and channels that point at releases.

- A run is kept with its fingerprints (model, adapter, suites), the recipe and data hashes from its
  provenance, and who or what made it (`creator()`).
- A verdict is kept with the content hash of its gate file, the pair it judged, and `on_inconclusive`'s reason.
- A channel (`approved`) binds one gate file when it is created and points at its current release.
  Promoting appends release N+1 and moves the pointer in one transaction, with a conditional update on
  the release number: of two jobs promoting at once, exactly one wins. Nothing is overwritten.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.api import UserError
from harness.core.fileio import not_a_file
from harness.core.untrusted import excerpt
from harness.storage.db import Database

CI_VARIABLES = (("GITHUB_RUN_ID", "github run"), ("CI_JOB_ID", "gitlab job"), ("BUILDKITE_JOB_ID", "buildkite job"),
                ("CIRCLE_WORKFLOW_JOB_ID", "circleci job"), ("BUILD_TAG", "jenkins build"))


def creator() -> str:
    """The CI job that runs this (GitHub Actions, GitLab CI, Buildkite, CircleCI, Jenkins), else user@host."""
    for var, kind in CI_VARIABLES:
        value = os.environ.get(var)
        if value:
            extra = os.environ.get("GITHUB_REPOSITORY") if var == "GITHUB_RUN_ID" else os.environ.get("CI_PROJECT_PATH")
            return f"{kind} {value}" + (f" ({extra})" if extra else "")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def run_identity(results: dict[str, Any]) -> str:
    """The run's id from results.json, else a content hash of results.json (hand-made or converted runs)."""
    rid = results.get("run_id")
    if isinstance(rid, str) and rid:
        return rid
    return "sha256-" + hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()[:32]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def run_row(run_id: str, results: dict[str, Any], samples: Sequence[Mapping[str, Any]], who: str) -> tuple[Any, ...]:
    """A ledger_runs row: identity, fingerprints and provenance hashes, then the run itself."""
    model, adapter, prov, suites = _dict(results.get("model")), {}, {}, _dict(results.get("suites"))
    adapter = _dict(model.get("adapter"))
    prov = _dict(adapter.get("provenance"))
    fingerprints = {name: (s.get("fingerprint") if isinstance(s, dict) else None) for name, s in suites.items()}
    return (run_id, time.time(), who, str(adapter.get("name") or "base"), model.get("fingerprint_hash"),
            adapter.get("hash"), prov.get("recipe_hash"), prov.get("data_hash"), json.dumps(fingerprints),
            json.dumps(results), json.dumps(samples))


def record_run(db: Database, results: dict[str, Any], samples: Sequence[Mapping[str, Any]],
               run_id: str | None = None) -> str:
    """Keep a run (once: a run id already in the ledger is left as it is); returns its id."""
    rid = run_id or run_identity(results)
    if db.execute("SELECT 1 FROM ledger_runs WHERE run_id=?", (rid,)).fetchone() is None:
        db.execute("INSERT INTO ledger_runs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id) DO NOTHING",
                   run_row(rid, results, samples, creator()))
    return rid


def gate_hash(gate_file: Path) -> str:
    return hashlib.sha256(Path(gate_file).read_bytes()).hexdigest()


def record_verdict(db: Database, gate_file: Path, verdict: dict[str, Any], baseline: tuple[dict, list],
                   candidate: tuple[dict, list]) -> str:
    """Keep both runs and the verdict (verdict.json content) the gate gave the pair; returns the verdict id."""
    vid = uuid.uuid4().hex
    with db.transaction():
        base_id = record_run(db, *baseline)
        cand_id = record_run(db, *candidate)
        inconclusive = sum(1 for r in verdict["rules"] if r["verdict"] == "INCONCLUSIVE")
        db.execute("INSERT INTO ledger_verdicts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (vid, time.time(), creator(), gate_hash(gate_file), str(gate_file), base_id, cand_id,
                    verdict["verdict"], verdict["on_inconclusive"], verdict.get("reason"), inconclusive,
                    json.dumps(verdict)))
    return vid


# ---------------------------------------------------------------- channels


@dataclass
class Channel:
    name: str
    gate_hash: str | None
    gate_file: str | None
    number: int  # the current release (0: none yet)
    run_id: str | None


def channel(db: Database, name: str) -> Channel | None:
    row = db.execute("SELECT name, gate_hash, gate_file, number, run_id FROM ledger_channels WHERE name=?",
                     (name,)).fetchone()
    return Channel(row[0], row[1], row[2], int(row[3]), row[4]) if row else None


def channels(db: Database) -> list[Channel]:
    return [Channel(r[0], r[1], r[2], int(r[3]), r[4]) for r in db.execute(
        "SELECT name, gate_hash, gate_file, number, run_id FROM ledger_channels ORDER BY name").fetchall()]


def require_channel(db: Database, name: str) -> Channel:
    ch = channel(db, name)
    if ch is None:
        names = [r[0] for r in db.execute("SELECT name FROM ledger_channels ORDER BY name").fetchall()]
        known = f" (channels: {', '.join(names)})" if names else " (the store has none)"
        raise UserError(f"no channel '{excerpt(name, 60)}'{known}; create it with `tunegate channel create NAME "
                        "--gate GATE.yaml --release RUN`", source=db.location, field="--channel")
    return ch


def create_channel(db: Database, name: str, gate_file: Path, first_run: str, reason: str | None = None) -> Channel:
    """A channel bound to a gate file, with `first_run` as release 1. The caller has validated the gate file
    (harness.flows.release.create_channel): the ledger keeps its bytes and hash, and knows no gate schema."""
    gate_file = Path(gate_file)
    if not gate_file.is_file():
        why = not_a_file(gate_file)
        raise UserError("gate file not found" if why == "does not exist" else f"the gate file {why}",
                        source=str(gate_file), field="--gate")
    text = gate_file.read_bytes().decode("utf-8")  # byte for byte: `tunegate cycle` rewrites it to this hash
    with db.transaction():
        if channel(db, name) is not None:
            raise UserError(f"channel '{excerpt(name, 60)}' exists already; its gate file is fixed at creation",
                            source=db.location, field="name")
        rid = resolve_run_id(db, first_run)
        now, who = time.time(), creator()
        db.execute("INSERT INTO ledger_channels VALUES (?,?,?,?,?,?,1,?)",
                   (name, gate_hash(gate_file), str(gate_file), text, now, who, rid))
        db.execute("INSERT INTO ledger_releases VALUES (?,1,?,NULL,?,?,NULL,0,?)",
                   (name, rid, now, who, reason or "first release of the channel"))
    return require_channel(db, name)


def save_release(db: Database, name: str, run_id: str, results: dict[str, Any], samples: list[dict[str, Any]],
                 reason: str) -> int:
    """`eval --save-baseline NAME`: keep the run and append it as NAME's next release (a channel without a
    gate is created on first use). One transaction; returns the release number."""
    with db.transaction():
        rid = record_run(db, results, samples, run_id)
        ch = channel(db, name)
        if ch is None:
            db.execute("INSERT INTO ledger_channels VALUES (?,NULL,NULL,NULL,?,?,0,NULL)", (name, time.time(), creator()))
            ch = Channel(name, None, None, 0, None)
        return _move(db, ch, rid, verdict_id=None, forced=True, reason=reason)


def _move(db: Database, ch: Channel, run_id: str, *, verdict_id: str | None, forced: bool, reason: str | None) -> int:
    """Append release N+1 and move the pointer, if the channel is still at release N (else refuse)."""
    cur = db.execute("UPDATE ledger_channels SET number=number+1, run_id=? WHERE name=? AND number=?",
                     (run_id, ch.name, ch.number))
    if cur.rowcount != 1:
        now = channel(db, ch.name)
        raise UserError(f"channel '{excerpt(ch.name, 60)}' moved to release {now.number if now else '?'} while this "
                        f"promote ran (it expected release {ch.number}); gate against the new release and promote "
                        "again", source=db.location, field="--to")
    db.execute("INSERT INTO ledger_releases VALUES (?,?,?,?,?,?,?,?,?)",
               (ch.name, ch.number + 1, run_id, ch.run_id, time.time(), creator(), verdict_id, int(forced), reason))
    return ch.number + 1


def save_baseline(db: Database, name: str, run_id: str, results: dict[str, Any], samples: list[dict[str, Any]]) -> int:
    """`eval --save-baseline NAME`: record the run and make it NAME's next release (nothing is overwritten)."""
    return save_release(db, name, run_id, results, samples, reason="eval --save-baseline")


def channel_names(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM ledger_channels ORDER BY name")]


def channel_run(db: Database, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Results and samples of the channel's current release."""
    row = db.execute("SELECT l.results_json, l.samples_json FROM ledger_channels c JOIN ledger_runs l "
                     "ON l.run_id=c.run_id WHERE c.name=?", (name,)).fetchone()
    return (json.loads(row[0]), json.loads(row[1])) if row else None


def release_run(db: Database, name: str, which: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A release of a channel: `first`, `current`, a release number, or a run id; (run id, results, samples)."""
    ch = require_channel(db, name)
    if which == "current":
        number: int | None = ch.number
    elif which == "first":
        number = 1
    else:
        number = int(which) if which.isdigit() else None
    if number is not None:
        row = db.execute("SELECT run_id FROM ledger_releases WHERE channel=? AND number=?", (name, number)).fetchone()
        if row is None:
            raise UserError(f"channel '{excerpt(name, 60)}' has no release {number} (it is at release {ch.number})",
                            source=db.location, field="from")
        rid = row[0]
    else:
        rid = resolve_run_id(db, which)
    results, samples = run_data(db, rid)
    return rid, results, samples


# ---------------------------------------------------------------- runs


def resolve_run_id(db: Database, ref: str) -> str:
    """A run id or a unique prefix of one, or CHANNEL@N. (A run directory is recorded and turned into its id by
    the command first: harness.flows.refs.run_ref; the ledger reads no run files.)"""
    if "@" in ref:
        name, _, which = ref.rpartition("@")
        return release_run(db, name, which)[0]
    rows = db.execute("SELECT run_id FROM ledger_runs WHERE run_id=? OR run_id LIKE ? ORDER BY run_id LIMIT 3",
                      (ref, ref.replace("%", "").replace("_", "") + "%")).fetchall()
    exact = [r[0] for r in rows if r[0] == ref]
    if exact:
        return str(exact[0])
    if len(rows) == 1 and len(ref) >= 4:
        return str(rows[0][0])
    if rows:
        raise UserError(f"run '{excerpt(ref, 40)}' is ambiguous: {', '.join(r[0][:12] for r in rows)}...; give more "
                        "of its id", source=db.location, field="RUN")
    raise UserError(f"no run '{excerpt(ref, 60)}' in the ledger: pass a run directory, a run id from `tunegate runs "
                    "list`, or CHANNEL@N", source=db.location, field="RUN")


def run_data(db: Database, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = db.execute("SELECT results_json, samples_json FROM ledger_runs WHERE run_id=?", (run_id,)).fetchone()
    if row is None:
        raise UserError(f"no run '{excerpt(run_id, 60)}' in the ledger", source=db.location, field="RUN")
    return json.loads(row[0]), json.loads(row[1])


@dataclass
class RunSummary:
    run_id: str
    created: float
    creator: str
    label: str
    suites: dict[str, str | None]
    model_hash: str | None
    adapter_hash: str | None
    recipe_hash: str | None
    data_hash: str | None


RUN_COLUMNS = "run_id, created, creator, label, suites_json, model_hash, adapter_hash, recipe_hash, data_hash"


def _summary(r: Any) -> RunSummary:
    return RunSummary(r[0], float(r[1]), r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8])


def _timestamp(text: str) -> float:
    """A date or ISO time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"not a date: {excerpt(text, 40)} (use YYYY-MM-DD or an ISO time)", field="--since") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def list_runs(db: Database, suite: str | None = None, since: str | None = None) -> list[RunSummary]:
    """Runs in the ledger, newest first; only those with `suite`, only those created on or after `since`."""
    rows = db.execute(f"SELECT {RUN_COLUMNS} FROM ledger_runs WHERE created>=? ORDER BY created DESC",
                      (_timestamp(since) if since else 0.0,)).fetchall()
    return [r for r in map(_summary, rows) if suite is None or suite in r.suites]


def show_run(db: Database, ref: str) -> dict[str, Any]:
    """One run: its summary, its scores per suite, the verdicts it received and the releases it became."""
    rid = resolve_run_id(db, ref)
    summary = _summary(db.execute(f"SELECT {RUN_COLUMNS} FROM ledger_runs WHERE run_id=?", (rid,)).fetchone())
    results, _ = run_data(db, rid)
    verdicts = [{"verdict_id": r[0], "created": r[1], "creator": r[2], "gate_file": r[3], "gate_hash": r[4],
                 "baseline_run": r[5], "verdict": r[6], "on_inconclusive": r[7], "reason": r[8]}
                for r in db.execute("SELECT verdict_id, created, creator, gate_file, gate_hash, baseline_run, verdict, "
                                    "on_inconclusive, reason FROM ledger_verdicts WHERE candidate_run=? ORDER BY created",
                                    (rid,)).fetchall()]
    releases = [{"channel": r[0], "number": r[1], "created": r[2], "forced": bool(r[3]), "reason": r[4]}
                for r in db.execute("SELECT channel, number, created, forced, reason FROM ledger_releases WHERE run_id=? "
                                    "ORDER BY created", (rid,)).fetchall()]
    scores = {name: {m: v.get("value") for m, v in (s.get("metrics") or {}).items()}
              for name, s in (results.get("suites") or {}).items()}
    return {"summary": summary, "scores": scores, "verdicts": verdicts, "releases": releases}


# ---------------------------------------------------------------- promote


@dataclass
class Promotion:
    channel: str
    number: int
    run_id: str
    previous_run: str | None
    forced: bool
    reason: str | None


def promote(db: Database, ref: str, to: str, *, force: bool = False, reason: str | None = None) -> Promotion:
    """Make a run the channel's next release. Refused unless the channel's own gate file passed the run
    against the channel's current release (a pass through `on_inconclusive: pass` counts with its reason);
    `force` needs a reason, which is kept."""
    if force and not (reason or "").strip():
        raise UserError("--force needs --reason: the ledger keeps why a release skipped its gate", field="--reason")
    rid = resolve_run_id(db, ref)
    with db.transaction():
        ch = require_channel(db, to)
        if ch.run_id == rid:
            raise UserError(f"run {rid[:12]} is already release {ch.number} of '{excerpt(to, 60)}'", field="RUN")
        verdict_id = None
        if not force:
            verdict_id, reason = _passing_verdict(db, ch, rid)
        number = _move(db, ch, rid, verdict_id=verdict_id, forced=force, reason=reason)
    return Promotion(to, number, rid, ch.run_id, force, reason)


def _passing_verdict(db: Database, ch: Channel, rid: str) -> tuple[str, str | None]:
    """The verdict that lets `rid` become the channel's next release, with its reason; else a one-line refusal."""
    if ch.gate_hash is None:
        raise UserError(f"channel '{excerpt(ch.name, 60)}' has no gate file (saved with --save-baseline): promote "
                        "with --force --reason, or create a gated channel", field="--to")
    found = db.execute("SELECT verdict_id, verdict, inconclusive_rules, reason, baseline_run, verdict_json "
                       "FROM ledger_verdicts WHERE candidate_run=? AND gate_hash=? ORDER BY created DESC",
                       (rid, ch.gate_hash)).fetchall()
    # A verdict imported from another store is a claim, not a derivation (`store import` marks it): only a
    # gate run against this ledger's copies of the runs authorises a promote.
    rows = [r[:5] for r in found if not _imported(r[5])]
    if found and not rows:
        raise UserError(f"the only verdicts of {ch.gate_file} on run {rid[:12]} were imported from another store; "
                        f"derive one here: `tunegate gate {ch.gate_file} --baseline {ch.name} --candidate "
                        f"{rid[:12]}`", field="RUN")
    against = [r for r in rows if r[4] == ch.run_id]
    if not against:
        older = f"; it was gated against {rows[0][4][:12]}, not the current release" if rows else ""
        raise UserError(f"run {rid[:12]} has no recorded verdict of {ch.gate_file} against release {ch.number} of "
                        f"'{excerpt(ch.name, 60)}' (run {str(ch.run_id)[:12]}){older}: run `tunegate gate "
                        f"{ch.gate_file} --baseline {ch.name} --candidate RUN` first", field="RUN")
    vid, verdict, inconclusive, why, _ = against[0]
    if verdict != "PASS":
        raise UserError(f"the latest verdict of {ch.gate_file} on run {rid[:12]} against release {ch.number} is "
                        f"{verdict}, not PASS", field="RUN")
    if int(inconclusive) and not (why or "").strip():
        raise UserError("the verdict passed through on_inconclusive: pass without a recorded reason", field="RUN")
    return vid, (f"on_inconclusive: pass ({why})" if int(inconclusive) else None)


def _imported(verdict_json: str) -> bool:
    try:
        verdict = json.loads(verdict_json)
    except (ValueError, TypeError, RecursionError):
        return True  # unreadable: not evidence
    return not isinstance(verdict, dict) or "imported" in verdict


# ---------------------------------------------------------------- history


@dataclass
class HistoryPoint:
    number: int
    run_id: str
    created: float
    label: str
    value: float | None
    lo: float | None
    hi: float | None
    n: int
    fingerprint: str | None
    suite_changed: bool  # this release was evaluated on another version of the suite than the one before
    forced: bool
    reason: str | None


def releases(db: Database, name: str) -> list[tuple[int, str, float, bool, str | None]]:
    require_channel(db, name)
    return [(int(r[0]), r[1], float(r[2]), bool(r[3]), r[4]) for r in db.execute(
        "SELECT number, run_id, created, forced, reason FROM ledger_releases WHERE channel=? ORDER BY number",
        (name,)).fetchall()]


def metric_of(results: dict[str, Any], ref: str) -> tuple[dict[str, Any] | None, str | None]:
    """`suite/metric` or `suite/task/metric` of a run: ({value, ci95, n} or None, the suite's fingerprint)."""
    parts = ref.split("/")
    suite = (results.get("suites") or {}).get(parts[0])
    if suite is None:
        return None, None
    if len(parts) == 2:
        return (suite.get("metrics") or {}).get(parts[1]), suite.get("fingerprint")
    task = (suite.get("tasks") or {}).get(parts[1]) or {}
    return (task.get("metrics") or {}).get(parts[2]), suite.get("fingerprint")


def history(db: Database, name: str, metric: str) -> list[HistoryPoint]:
    """The channel's releases in order, each with the metric's value and 95% interval as recorded."""
    if metric.count("/") not in (1, 2) or not all(metric.split("/")):
        raise UserError(f"expected SUITE/METRIC or SUITE/TASK/METRIC, got {excerpt(metric, 60)}", field="--metric")
    points: list[HistoryPoint] = []
    previous: str | None = None
    for number, rid, created, forced, reason in releases(db, name):
        row = db.execute("SELECT results_json, label FROM ledger_runs WHERE run_id=?", (rid,)).fetchone()
        results = json.loads(row[0])
        m, fp = metric_of(results, metric)
        ci = (m or {}).get("ci95") or [None, None]
        points.append(HistoryPoint(number, rid, created, row[1], (m or {}).get("value"), ci[0], ci[1],
                                   int((m or {}).get("n") or 0), fp, previous is not None and fp != previous,
                                   forced, reason))
        previous = fp if fp is not None else previous
    if not any(p.value is not None for p in points):
        raise UserError(f"no release of '{excerpt(name, 60)}' reports {excerpt(metric, 60)}", field="--metric")
    return points
