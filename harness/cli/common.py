"""What the command modules share: argument types and groups, the store, quiet libraries."""

# Local imports: each command imports what it runs when it runs, so `tunegate --help` and a bad argument
# answer at once instead of after loading torch, transformers and the report stack.

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

STORE_HELP = ("store: an SQLite file or a postgresql:// URL (default: $TUNEGATE_STORE, else store.sqlite in the "
              "tunegate home, $TUNEGATE_HOME)")


def store_help(what: str) -> str:
    """The --store help of one command: what it keeps there, and the default without a path that
    $TUNEGATE_HOME would change."""
    return f"{STORE_HELP}; {what}"


def _quiet_libraries(verbose: bool = False) -> None:
    # Our own progress bars carry the ETA; the libraries' per-file bars and warnings only add noise.
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")


def _store(args: argparse.Namespace) -> Any:
    from harness.storage.store import Store

    return Store(getattr(args, "store", None))


class _DefaultSubcommand(argparse._SubParsersAction):
    """Subcommands where any other first word starts the default one: `review RUN...` is `review serve RUN...`."""

    class _AnyWord(dict):  # argparse checks the first word against `choices` before calling the action
        def __contains__(self, key: object) -> bool:
            return True

    def __init__(self, *args: Any, default_command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command
        self.choices = self._AnyWord(self._name_parser_map)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [self.default_command, *values]
        super().__call__(parser, namespace, values, option_string)


def _endpoint_args(args: argparse.Namespace) -> dict[str, Any]:
    """The endpoint options the user set (an in-process backend refuses any of them)."""
    given = {"base_url": args.base_url, "api_key_env": args.api_key_env, "concurrency": args.concurrency,
             "timeout": args.timeout, "budget": args.budget, "retries": args.retries, "revision": args.revision,
             "max_response_mb": args.max_response_mb}
    return {k: v for k, v in given.items() if v is not None}


def _endpoint_options(parser: argparse.ArgumentParser) -> None:
    """Options of `-m openai:MODEL`: only here and in the environment, never in a suite file."""
    group = parser.add_argument_group("endpoint models (-m openai:MODEL)")
    group.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
                                          "(default: $OPENAI_BASE_URL)")
    group.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key "
                                                            "(default: OPENAI_API_KEY; the key is never stored)")
    group.add_argument("--concurrency", type=_positive, help="requests in flight (default 8)")
    group.add_argument("--timeout", type=_positive_float, help="seconds per request attempt, connect to last byte "
                                                               "(default 120)")
    group.add_argument("--retries", type=_non_negative, help="retries of a request on 429, 5xx, timeouts and lost "
                                                   "connections, with exponential backoff and jitter (default 5)")
    group.add_argument("--max-response-mb", type=_positive_float, help="largest response body read, checked while "
                                                                       "it streams (default 4)")
    group.add_argument("--budget", type=_positive_float, help="seconds for all requests of a run, retries included "
                                                    "(default: none); what is left fails and can be resumed")
    group.add_argument("--revision", help="what you call the served weights (part of the cache key: an endpoint "
                                          "cannot be fingerprinted by its weights)")


def _allow_outside_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside-data", action="store_true",
                        help="let suites read data files outside their own folder (symlinks, ../, absolute paths)")
    parser.add_argument("--trust-task-code", action="append", metavar="DIR",
                        help="let lm-eval task files under DIR run their Python (!function, process_docs); "
                             "this runs that code, as lm-eval does (repeatable)")
    parser.add_argument("--tasks", action="append", metavar="GLOB",
                        help="evaluate only the tasks whose name, or lm-eval task, tag or group name, matches "
                             "(repeatable; -s SUITE/TASK selects one suite's task)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    import math

    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be a positive, finite number")
    return value


def _say(line: str) -> None:
    """An error line on stderr: secrets redacted, control characters escaped."""
    from harness.core.untrusted import terminal_line

    print(terminal_line(line), file=sys.stderr)
