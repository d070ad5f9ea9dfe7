"""Stakeholder reports and terminal output.

- `write.py`: `write_reports`, Markdown (step summary / PR comment) and one self-contained HTML file;
- `markdown.py`, `html.py` (+ `templates/`, `svg.py`): the two renderers over `data.py`'s ReportData;
- `terminal.py`: rich tables for compare, gate and eval; `fmt.py`: number formatting shared by all.

This package imports none of its submodules, so a submodule never imports its half-initialised package.
"""
