"""`library_output`: library warnings, logs and bars go to the log file inside the block, and come back after."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import datasets
import pytest
from transformers.utils import logging as hf_logging

from harness.core.quiet import active_log, library_output, log_path


def test_library_output_goes_to_the_file_and_is_restored(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "logs" / "lib.log"
    bars, handlers = datasets.is_progress_bar_enabled(), list(logging.getLogger().handlers)
    with library_output(log) as path:
        assert path == log and active_log() == log
        warnings.warn("`gradient_checkpointing` is deprecated", FutureWarning, stacklevel=1)
        hf_logging.get_logger("transformers.trainer").warning("a transformers warning")
        logging.getLogger("peft.tuners").warning("a peft warning")
        datasets.Dataset.from_dict({"x": list(range(5))}).map(lambda r: r, desc="Map rows")
        assert not datasets.is_progress_bar_enabled() and not hf_logging.is_progress_bar_enabled()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # nothing reached the terminal
    text = log.read_text(encoding="utf-8")
    assert "FutureWarning: `gradient_checkpointing` is deprecated" in text
    assert "a transformers warning" in text and "a peft warning" in text
    # everything is back as it was
    assert active_log() is None and datasets.is_progress_bar_enabled() == bars
    assert logging.getLogger().handlers == handlers
    with pytest.warns(FutureWarning):
        warnings.warn("shown again", FutureWarning, stacklevel=1)


def test_verbose_changes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "lib.log"
    with library_output(log, verbose=True) as path:
        assert path is None and active_log() is None
        with pytest.warns(FutureWarning):
            warnings.warn("shown", FutureWarning, stacklevel=1)
    assert not log.exists()


def test_log_path_is_under_tunegate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEGATE_HOME", str(tmp_path))
    path = log_path("train", "my recipe/../x")
    assert path.parent == tmp_path / "logs" and path.name.startswith("train-my_recipe_.._x-")
