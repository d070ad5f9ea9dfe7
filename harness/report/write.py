"""Write the stakeholder reports: compare every run with the baseline, render, write atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.fileio import atomic_write_text
from harness.core.untrusted import strip_controls
from harness.data.runs import Run
from harness.decide.gate import GateResult
from harness.report.data import HumanEval, ReportData, build
from harness.report.history import History, history_markdown
from harness.report.html import render_html
from harness.report.markdown import render_markdown


def write_reports(runs: list[Run], *, baseline_index: int = 0, gate: GateResult | list[GateResult] | None = None,
                  html_path: Path | None = None, md_path: Path | None = None,
                  human_eval: dict[str, Any] | HumanEval | None = None, n_resamples: int = 10_000,
                  seed: int = 0, history: History | None = None, store_path: Path | str | None = None,
                  pairwise: list[dict[str, Any]] | None = None) -> ReportData:
    """Compare every run with the baseline and write the requested reports (temp file + rename); `history`
    (a channel's releases, harness.report.history) adds the History section. `store_path` holds the review
    app's ratings the judge is calibrated against; `pairwise` are results of `tunegate judge`."""
    data = build(runs, baseline_index=baseline_index, gate=gate, human_eval=human_eval,
                 n_resamples=n_resamples, seed=seed, store_path=store_path, pairwise=pairwise)
    data.history = history
    # Text from run, gate and suite files may hold ESC, BEL or bidirectional overrides: shown escaped, never raw
    if html_path is not None:
        atomic_write_text(Path(html_path), strip_controls(render_html(data)))
    if md_path is not None:
        md = render_markdown(data)
        if history is not None:
            md = md.rstrip() + "\n\n" + "\n".join(history_markdown(history)).rstrip() + "\n"
        atomic_write_text(Path(md_path), strip_controls(md))
    return data
