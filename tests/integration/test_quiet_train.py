"""`tunegate train` on the tiny model shows its own stage and one progress bar; library output goes to the log
file the last line names. `--verbose` shows the libraries' output again."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.train_helpers import write_recipe

pytestmark = pytest.mark.slow  # a real 2-step training run in a subprocess (~15-25 s each)

ROOT = Path(__file__).resolve().parents[2]
NOISE = ("Map", "Tokenizing", "Packing", "it/s]", "FutureWarning", "{'loss'", "'eval_loss'", "gradient_checkpointing")


def _train(recipe: Path, home: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUNEGATE_HOME": str(home), "TUNEGATE_STORE": str(home / "store.sqlite"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "train", str(recipe), *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_is_quiet_and_logs_library_output(tiny_model: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, "quiet-lora", tiny_model)
    proc = _train(recipe, tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = proc.stdout + proc.stderr
    for noise in NOISE:
        assert noise not in shown, f"{noise!r} reached the terminal:\n{shown[-3000:]}"
    assert "tunegate: training quiet-lora" in proc.stderr
    bar = [line for line in re.split(r"[\r\n]", proc.stderr) if line.startswith("training quiet-lora")]
    assert bar and "2/2" in bar[-1] and "step" in bar[-1]  # our one bar, with elapsed time and rate
    log = Path(proc.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert log.parent == tmp_path / "home" / "logs" and log.is_file()
    text = log.read_text(encoding="utf-8")
    assert "FutureWarning" in text and "gradient_checkpointing" in text  # the warnings, in the file
    assert "'loss'" in text and "'eval_loss'" in text  # the trainer's logged dicts, in the file


def test_verbose_shows_library_output(tiny_model: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, "loud-lora", tiny_model)
    proc = _train(recipe, tmp_path / "home", "--verbose")
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = proc.stdout + proc.stderr
    assert "FutureWarning" in shown and "'loss'" in shown and "Map" in shown
    assert "library output" not in proc.stdout and not (tmp_path / "home" / "logs").exists()
