"""The command line: parse, call one function, print. Work lives in the modules it calls.

One module per command group (`evaluate`, `decide`, `train`, `review`, `ledger`), each with its parsers
beside its handlers and an `add(sub)` that registers them; `common` holds what they share. This module
builds the parser from the groups and runs a command with its exit codes and crash log."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.cli import decide, evaluate, ledger, metrics, review, train
from harness.cli.common import _quiet_libraries, _say
from harness.core.api import RunIncomplete, UserError


class _Parser(argparse.ArgumentParser):
    """argparse with a bad option as one line (`tunegate eval: error: argument --timeout: ...`), exit 2: the
    usage block would bury the one line that says what is wrong (`--help` shows it)."""

    def error(self, message: str) -> Any:
        from harness.core.untrusted import strip_controls

        self.exit(2, f"{self.prog}: error: {strip_controls(message)} (see {self.prog} --help)\n")


def _version() -> str:
    from harness import __version__

    return f"tunegate {__version__}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a command the way Ctrl-C does."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tunegate` console script."""
    import signal
    import sqlite3
    import threading

    from harness.core.untrusted import SafeTextStream, allowing_outside_data, trusting_task_code
    from harness.data.suite import selecting_tasks

    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    sys.stdout = SafeTextStream(stdout)  # type: ignore[assignment]  # no raw control character from a file
    _quiet_libraries(verbose=getattr(args, "verbose", False))
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can signals be handled
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        with allowing_outside_data(getattr(args, "allow_outside_data", False)), \
                trusting_task_code(getattr(args, "trust_task_code", None)), selecting_tasks(getattr(args, "tasks", None)):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) is a BrokenPipeError here
        return code
    except UserError as exc:
        _say(f"tunegate: error: {exc}")
        return exc.exit_code
    except RunIncomplete as exc:
        _say(f"tunegate: incomplete: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"tunegate: {getattr(args, 'interrupted', 'interrupted')}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        # The reader of our output stopped reading: say nothing more, as `cat` would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except sqlite3.DatabaseError as exc:  # a store that went bad after it opened (a damaged page, read-only)
        from harness.storage.store import default_store_path, store_error

        _say(f"tunegate: error: {store_error(Path(getattr(args, 'store', None) or default_store_path()), exc)}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a crash must never read as 1 (gate failed) or 3 (inconclusive)
        if type(exc).__module__.startswith("psycopg"):  # a PostgreSQL store that failed mid-command: one line
            from harness.storage.db import redact
            from harness.storage.store import default_store_ref

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            _say(f"tunegate: error: {redact(getattr(args, 'store', None) or default_store_ref())}: the store failed: "
                 f"{first}")
            return 2
        log = _crash_log()
        print(f"tunegate: internal error ({exc.__class__.__name__}); the traceback is in {log}", file=sys.stderr)
        return 4
    finally:
        sys.stdout = stdout
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _crash_log() -> str:
    """Write the current traceback to a log file and return its path."""
    import tempfile
    import time
    import traceback

    from harness.core.redact import redact

    text = redact(traceback.format_exc())  # a traceback may quote a key, a header or a store URL
    from harness.core.quiet import logs_dir  # start-up time, as every import here

    home = logs_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        path = home / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError:
        fd, name = tempfile.mkstemp(prefix="tunegate-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        path = Path(name)
    return str(path)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tunegate", description="Evaluate fine-tuned models and gate releases.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (evaluate, decide, train, review, ledger, metrics):
        group.add(sub)
    return parser
