"""Library output off the terminal, into a log file: tunegate's stages and progress bars stay on it.

Inside `library_output(path)`, with each library's own switches:
- transformers and datasets log to the file (their default stderr handler is off, verbosity INFO) and draw no
  progress bars (`Map`, `Tokenizing`, `Packing`, weight loading);
- Python warnings (FutureWarning about `gradient_checkpointing`, PEFT's UserWarnings) are logged to the file;
- every other library logger (peft, trl, accelerate, torch) reaches the file through a handler on the root logger;
- the Trainer's own tqdm bars and printed loss dicts are replaced by `TrainProgress`: one bar with an ETA.

Everything is restored on exit. `verbose=True` (the `--verbose` flag) changes nothing, so all output shows.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr
from pathlib import Path
from typing import Any, TextIO

from harness.core.fileio import home_path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_active: list[Path] = []  # the log files of the contexts now open (innermost last)


def logs_dir() -> Path:
    """Where tunegate writes logs: $TUNEGATE_HOME/logs (default ~/.cache/tunegate/logs)."""
    return home_path() / "logs"


def log_path(kind: str, name: str) -> Path:
    """A fresh log file path under `logs_dir()`, e.g. train-lora-20261130-161655.log."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    return logs_dir() / f"{kind}-{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def active_log() -> Path | None:
    """The log file library output goes to now, or None when it goes to the terminal."""
    return _active[-1] if _active else None


@contextmanager
def stray_bars() -> Iterator[None]:
    """Inside `library_output`, send stderr to its log file for the block: for libraries that draw tqdm bars
    with no switch to turn them off (transformers' GGUF de-quantising). Outside, nothing changes."""
    path = active_log()
    if path is None:
        yield
        return
    with open(path, "a", encoding="utf-8") as log, redirect_stderr(log):
        yield


@contextmanager
def library_output(path: Path, verbose: bool = False) -> Iterator[Path | None]:
    """Send library warnings, logs and progress bars to `path` (appended) until the block ends.

    Yields the path, or None when `verbose` (nothing is redirected)."""
    if verbose:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    with ExitStack() as stack:
        stack.callback(handler.close)
        _route_root(stack, handler)
        _route_warnings(stack)
        _route_transformers(stack, handler)
        _route_datasets(stack)
        _active.append(path)
        stack.callback(_active.pop)
        yield path


def _route_root(stack: ExitStack, handler: logging.Handler) -> None:
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    stack.callback(root.setLevel, level)
    stack.callback(root.removeHandler, handler)


def _route_warnings(stack: ExitStack) -> None:
    """Warnings are logged, not printed; filters and `showwarning` come back when the block ends."""
    stack.enter_context(warnings.catch_warnings())
    logger = logging.getLogger("py.warnings")

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
             line: str | None = None) -> None:
        logger.warning("%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())

    warnings.showwarning = show


def _route_transformers(stack: ExitStack, handler: logging.Handler) -> None:
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.disable_default_handler()
    hf_logging.add_handler(handler)
    hf_logging.set_verbosity_info()
    hf_logging.disable_progress_bar()
    stack.callback(lambda: hf_logging.enable_progress_bar() if bars else None)
    stack.callback(hf_logging.set_verbosity, verbosity)
    stack.callback(hf_logging.remove_handler, handler)
    stack.callback(hf_logging.enable_default_handler)


def _route_datasets(stack: ExitStack) -> None:
    import datasets
    from datasets.utils import logging as ds_logging

    verbosity, bars = ds_logging.get_verbosity(), datasets.is_progress_bar_enabled()
    ds_logging.set_verbosity_info()  # its logger propagates to the root handler, so to the file
    datasets.disable_progress_bars()
    stack.callback(lambda: datasets.enable_progress_bars() if bars else None)
    stack.callback(ds_logging.set_verbosity, verbosity)


def quiet_trainer(trainer: Any, label: str, progress: bool) -> None:
    """Inside `library_output`: the Trainer prints no loss dicts and no bars of its own; one bar with an ETA
    (when `progress`) shows the training steps, and every logged dict goes to the log file."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_progress_callback(label, progress))


def _progress_callback(label: str, progress: bool) -> Any:
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    logger = logging.getLogger("tunegate.train")

    class TrainProgress(TrainerCallback):  # type: ignore[misc]
        """One bar per training run on the real stderr; the trainer's logs go to the log file."""

        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress and state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, desc=label, unit="step", file=sys.stderr, dynamic_ncols=True,
                                leave=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                logger.info("step %s: %s", state.global_step, logs)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TrainProgress()
