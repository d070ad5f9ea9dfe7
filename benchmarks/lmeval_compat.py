"""How many of lm-evaluation-harness's shipped task files tunegate reads, at the configuration level.

Every `*.yaml` under lm-eval's `tasks/` folder is read with its includes (`harness.data.lmeval_task.read_config`);
each task config (a string `task:`, not a group or an include-only template) goes through every check
tunegate makes before reading data (`check_config`: keys, output type, metrics and their options, filters,
generation settings, few-shot sampler, and the `!function`s imported from the task's folder under
`--trust-task-code`). A refusal must be one line naming the file and the feature. Data is not read: the
shipped files name hub datasets.

Run (the `!function` modules import lm_eval, so lm-eval's site-packages are appended to the path):
    PYTHONPATH=. .venv/bin/python benchmarks/lmeval_compat.py /path/to/site-packages/lm_eval/tasks
"""

from __future__ import annotations

import collections
import sys
import warnings
from pathlib import Path

from harness.core.api import UserError
from harness.core.untrusted import trusting_task_code
from harness.data.lmeval_task import check_config, is_group, read_config, task_files

MAIN_TYPES = ("multiple_choice", "generate_until")


def main(tasks_dir: Path) -> int:
    sys.path.append(str(tasks_dir.parent.parent))  # lm_eval importable for the task modules (appended: ours win)
    warnings.simplefilter("ignore")
    loaded: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    multi_line = 0
    files = list(task_files(tasks_dir))
    with trusting_task_code([tasks_dir]):
        for file in files:
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
                reasons[_reason(text, file)] += 1
            except Exception as exc:  # noqa: BLE001 - a crash is counted and named, never hidden
                reasons[f"CRASH {type(exc).__name__}"] += 1
    for kind in sorted(total, key=lambda k: -total[k]):
        print(f"{kind:<24} {loaded[kind]:>5} / {total[kind]:<5} load")
    main_loaded, main_total = sum(loaded[k] for k in MAIN_TYPES), sum(total[k] for k in MAIN_TYPES)
    all_loaded, all_total = sum(loaded.values()), sum(total.values())
    print("refusals by feature (top 15):")
    for reason, count in reasons.most_common(15):
        print(f"  {count:>5}  {reason}")
    print(f"RESULT lm-eval task files load: multiple_choice+generate_until {main_loaded}/{main_total} = "
          f"{main_loaded / max(main_total, 1):.1%} (goal >= 90%); all output types {all_loaded}/{all_total} = "
          f"{all_loaded / max(all_total, 1):.1%}; refusals not one line naming the file: {multi_line}; "
          f"{len(files)} yaml files scanned")
    return 0


def _reason(text: str, file: Path) -> str:
    """The feature a refusal names: the field, and the message without file-specific parts."""
    rest = text.split(f"{file}: ", 1)[-1]
    field, _, message = rest.partition(": ")
    message = message.split(" (")[0]
    if message.startswith("!function"):
        message = "!function " + message.split(": ", 1)[-1]
    return f"{field}: {message[:90]}"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: lmeval_compat.py LM_EVAL_TASKS_DIR")
    sys.exit(main(Path(sys.argv[1])))
