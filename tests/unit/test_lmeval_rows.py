"""The compatibility benchmark's row generator (benchmarks/lmeval_rows.py) reads a task's own Python for the layout:
the values a process_docs filter keeps, columns a computed key reads, and the keys of the module's lookup dicts.
Each test writes a small task module of its own and checks that rows built from the hints survive it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from lmeval_rows import rows, task_hints  # noqa: E402

MODULE = '''
LEVELS = {"easy": 1, "hard": 2}


def process_docs(dataset):
    return dataset.filter(lambda doc: doc["subject"] == "anatomy")


def doc_to_text(doc):
    options = " ".join(doc[f"option_{i}"] for i in range(3))
    return f"{doc['question']} ({LEVELS[doc['level']]}) {options}"
'''


def _module(tmp_path: Path) -> ModuleType:
    path = tmp_path / "task_utils.py"
    path.write_text(MODULE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("task_utils", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_from_the_hints_survive_the_tasks_own_filter_and_functions(tmp_path: Path) -> None:
    utils = _module(tmp_path)
    hints = task_hints({"doc_to_target": "answer"},
                       {"process_docs": utils.process_docs, "doc_to_text": utils.doc_to_text})
    assert {"subject", "question", "level", "option_0", "option_1", "option_2"} <= set(hints)
    generated = rows(hints, 3)
    kept = utils.process_docs(datasets.Dataset.from_list(generated))
    assert len(kept) == 3  # every row has the subject the filter keeps
    for doc in kept:
        assert doc["level"] in utils.LEVELS  # a key of the module's own dict, not a generated string
        assert utils.doc_to_text(doc).startswith(doc["question"])


def test_without_the_tasks_python_the_filter_leaves_nothing(tmp_path: Path) -> None:
    """The refinement is what makes the rows fit: from the templates alone the subject column is unknown."""
    utils = _module(tmp_path)
    generated = rows(task_hints({"doc_to_text": "{{question}}", "doc_to_target": "answer"}, {}), 3)
    generated = [{**row, "subject": "ABC"[i]} for i, row in enumerate(generated)]
    assert len(utils.process_docs(datasets.Dataset.from_list(generated))) == 0
