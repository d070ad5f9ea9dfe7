"""How many of lm-evaluation-harness's shipped task files tunegate reads: at the configuration level, and with
generated rows in each dataset's layout.

Every `*.yaml` under lm-eval's `tasks/` folder is read with its includes (`harness.data.lmeval_task.read_config`);
each task config (a string `task:`, not a group or an include-only template) goes through every check
tunegate makes before reading data (`check_config`: keys, output type, metrics and their options, filters,
generation settings, few-shot sampler, and the `!function`s imported from the task's folder under
`--trust-task-code`). A refusal must be one line naming the file and the feature.

The shipped files name hub datasets, which are not read. For the second figure, each config that loads is
given three generated rows (more when few-shot examples need them) in the layout its templates and functions
read (`lmeval_rows.py`: the templates, then the task's own Python probed for the values its filters keep and
the columns it reads), written as local JSON for every split it names, and converted by tunegate's own path
(`convert_task`: process_docs, few-shot sampling and every document rendered into a suite row). A task counts
as loaded only if that succeeds. A crash of the task's own process_docs or `!function` on generated rows is
counted apart ("needs the real data layout"): that is the guess of the layout failing, not a refusal.

Run (the `!function` modules import lm_eval, so lm-eval's site-packages are appended to the path):
    PYTHONPATH=. .venv/bin/python benchmarks/lmeval_compat.py /path/to/site-packages/lm_eval/tasks
For iteration, `--only GLOB` (repeatable, on the path under tasks/) and `--sample N` (a seeded draw of N files)
run a subset, `--families` prints the counts per task family (the first folder under tasks/), and `--log FILE`
writes every loaded task that did not render with the full reason.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fnmatch
import io
import random
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # lmeval_rows beside this file

from lmeval_rows import TimeUp, rows, task_hints, time_limit, with_local_data  # noqa: E402

from harness.core.api import UserError  # noqa: E402
from harness.core.untrusted import trusting_task_code  # noqa: E402
from harness.data.lmeval_task import (  # noqa: E402
    FunctionRef,
    check_config,
    convert_task,
    is_group,
    read_config,
    task_files,
    task_functions,
)
from harness.data.suite import read_rows  # noqa: E402

MAIN_TYPES = ("multiple_choice", "generate_until")
TASK_SECONDS = 60  # one conversion of a few generated rows; a loop in the task's code on them is cut off


def main(tasks_dir: Path, only: list[str] | None = None, sample: int = 0, seed: int = 0, families: bool = False,
         log: Path | None = None) -> int:
    package = next((p for p in tasks_dir.resolve().parents if p.name == "lm_eval"), tasks_dir.parent)
    sys.path.append(str(package.parent))  # lm_eval importable for the task modules (appended: ours win)
    warnings.simplefilter("ignore")
    loaded: collections.Counter[str] = collections.Counter()
    rendered: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    row_reasons: collections.Counter[str] = collections.Counter()
    example: dict[str, str] = {}  # a file per reason, to look at
    layout: collections.Counter[str] = collections.Counter()
    multi_line = 0
    files = list(task_files(tasks_dir))
    if only:
        files = [f for f in files if any(fnmatch.fnmatch(str(f.relative_to(tasks_dir)), g) for g in only)]
    if sample and sample < len(files):
        files = sorted(random.Random(seed).sample(files, sample))
    family_total: collections.Counter[str] = collections.Counter()
    family_rendered: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    with trusting_task_code([tasks_dir]), tempfile.TemporaryDirectory() as tmp:
        for n, file in enumerate(files):
            try:
                cfg = read_config(file)
            except UserError as exc:
                total["(unreadable)"] += 1
                reasons[f"read: {_reason(str(exc), file)}"] += 1
                continue
            if is_group(cfg) or not isinstance(cfg.get("task"), str):
                continue  # groups and include-only templates are not tasks
            kind = str(cfg.get("output_type", "generate_until"))
            total[kind] += 1
            try:
                check_config(cfg, file)
                loaded[kind] += 1
            except UserError as exc:
                text = str(exc)
                multi_line += "\n" in text or str(file) not in text
                if "\n" in text or str(file) not in text:
                    example.setdefault("not one line naming the file", f"{file.relative_to(tasks_dir)}: {text[:200]}")
                reasons[_reason(text, file)] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a crash is counted and named, never hidden
                reasons[f"CRASH {type(exc).__name__}"] += 1
                continue
            failed, detail = _with_rows(cfg, file, Path(tmp) / str(n))
            family = file.relative_to(tasks_dir).parts[0]
            family_total[family] += kind in MAIN_TYPES
            if failed is None:
                rendered[kind] += 1
                family_rendered[family] += kind in MAIN_TYPES
                continue
            failures.append(f"{file.relative_to(tasks_dir)}\t{failed}\t{detail}")
            if failed.startswith("needs"):
                layout[failed] += 1
            else:
                row_reasons[failed] += 1
                example.setdefault(failed, str(file.relative_to(tasks_dir)))
    for kind in sorted(total, key=lambda k: -total[k]):
        print(f"{kind:<24} {loaded[kind]:>5} / {total[kind]:<5} load   {rendered[kind]:>5} render generated rows")
    main_loaded, main_total = sum(loaded[k] for k in MAIN_TYPES), sum(total[k] for k in MAIN_TYPES)
    main_rendered = sum(rendered[k] for k in MAIN_TYPES)
    all_loaded, all_total = sum(loaded.values()), sum(total.values())
    print("refusals by feature (top 15):")
    for reason, count in reasons.most_common(15):
        print(f"  {count:>5}  {reason}")
    print("loaded configs whose generated rows did not render (top 10):")
    for reason, count in [*layout.most_common(), *row_reasons.most_common(10)]:
        print(f"  {count:>5}  {reason}" + (f"  (e.g. {example[reason]})" if reason in example else ""))
    if families:
        print("multiple_choice+generate_until tasks per family that loaded: rendered / loaded (families with a miss):")
        for family in sorted(family_total, key=lambda f: family_rendered[f] - family_total[f]):
            if family_rendered[family] < family_total[family]:
                print(f"  {family_rendered[family]:>5} / {family_total[family]:<5} {family}")
    if log:
        log.write_text("".join(f"{line}\n" for line in failures), encoding="utf-8")
    if "not one line naming the file" in example:
        print(f"a refusal not one line naming the file, e.g. {example['not one line naming the file']!r}")
    print(f"RESULT lm-eval task files load: multiple_choice+generate_until {main_loaded}/{main_total} = "
          f"{main_loaded / max(main_total, 1):.1%} (goal >= 90%); with generated rows rendered {main_rendered}/"
          f"{main_total} = {main_rendered / max(main_total, 1):.1%} ({sum(layout.values())} more whose own "
          f"process_docs or !function needs the real data layout); all output types {all_loaded}/{all_total} = "
          f"{all_loaded / max(all_total, 1):.1%}; refusals not one line naming the file: {multi_line}; "
          f"{len(files)} yaml files scanned")
    return 0


def _with_rows(cfg: dict[str, Any], file: Path, folder: Path) -> tuple[str | None, str]:
    """(None, "") when the config renders generated rows through tunegate's converter, else why not and the
    first guess's full message."""
    hints = task_hints(cfg, task_functions(cfg, str(file))[0])
    shots = max(int(cfg.get("num_fewshot", 0) or 0), 0)
    last: UserError | None = None
    for fallback in (None, "int", "list", "digits", "letters", "one_based", "wide"):  # the inferred layout, then the other guesses (lmeval_rows.rows)
        where = folder / (fallback or "guess")
        where.mkdir(parents=True)
        try:
            with contextlib.redirect_stdout(io.StringIO()), time_limit(TASK_SECONDS):  # the task's Python may print
                convert_task(with_local_data(cfg, where, rows(hints, max(3, shots + 2), fallback)),
                             where / file.name, read_rows)
            return None, ""
        except TimeUp as exc:  # counted apart from the layout guesses: it may be the converter's own fault
            return f"TIMEOUT: converting generated rows ran past {TASK_SECONDS} s", str(exc)
        except UserError as exc:
            last = last or exc  # the inferred layout's failure is the one reported
        except Exception as exc:  # noqa: BLE001 - counted and named, never hidden
            return f"CRASH {type(exc).__name__}: {str(exc)[:80]}", repr(exc)
    text = str(last)
    if "process_docs" in text:
        return "needs the real data layout: the task's process_docs failed on generated rows", text
    if "(row " in text and any(isinstance(cfg.get(k), FunctionRef) for k in ("doc_to_text", "doc_to_target",
                                                                                "doc_to_choice")):
        return "needs the real data layout: the task's !function failed on generated rows", text
    return _reason(text, where / file.name), text


def _reason(text: str, file: Path) -> str:
    """The feature a refusal names: the field, and the message without file-specific parts."""
    rest = text.split(f"{file}: ", 1)[-1]
    field, _, message = rest.partition(": ")
    message = message.split(" (")[0]
    if message.startswith("!function"):
        message = "!function " + message.split(": ", 1)[-1]
    return f"{field}: {message[:90]}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks_dir", type=Path, help="lm-eval's tasks/ folder")
    parser.add_argument("--only", action="append", metavar="GLOB", help="only files whose path under tasks/ matches")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="a seeded draw of N files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", action="store_true", help="rendered / loaded per task family")
    parser.add_argument("--log", type=Path, help="write each loaded task that did not render, with the reason")
    args = parser.parse_args()
    if not args.tasks_dir.is_dir():
        parser.error(f"{args.tasks_dir} is not a folder")
    sys.exit(main(args.tasks_dir, args.only, args.sample, args.seed, args.families, args.log))
