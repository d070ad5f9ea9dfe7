"""Issue 24 (endpoint items): no leaked key, no hang, no score from a malformed answer. Each case runs
`tunegate eval` through the CLI against a real hostile HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from tests.conftest import MC_ROWS, MC_TASK, PPL_TASK, write_suite
from tests.unit.hostile_server import HostileServer, honest_logprobs, send_json, trickle

KEY = "sk-live-7f3a9c2e5b1d8f4a"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path / "suite", MC_TASK + PPL_TASK, {"data/mc.jsonl": MC_ROWS[:3]})


def _eval(srv: HostileServer, suite: Path, out: Path, *extra: str) -> int:
    return main(["eval", "-m", "openai:m", "--base-url", srv.url, "-s", str(suite), "--out", str(out),
                 "--store", str(out.parent / "store.sqlite"), "-q", "--concurrency", "2", *extra])


def _everything_written(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


# ---- 1. the key never leaves the process ---------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 500, 400])
def test_a_server_echoing_the_key_does_not_leak_it(tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def echo_key(handler: Any, path: str, body: dict[str, Any]) -> bool:
        if path.endswith("/completions") and "Paris" not in str(body.get("prompt")):
            auth = handler.headers.get("Authorization")
            return send_json(handler, status, {"error": {"message": f"Incorrect API key provided: {KEY}. "
                                                         f"Header was {auth}; api-key: {KEY}"}})
        return False

    with HostileServer(echo_key) as srv:
        code = _eval(srv, suite, tmp_path / "run", "--retries", "0")
    captured = capsys.readouterr()
    assert code == 5, captured.err  # the requests failed: the run is unfinished, not scored
    assert KEY not in captured.err + captured.out
    assert KEY[8:] not in captured.err + captured.out
    assert (tmp_path / "run" / "errors.jsonl").exists()
    assert KEY not in _everything_written(tmp_path)
    assert "***" in (tmp_path / "run" / "errors.jsonl").read_text()


@pytest.mark.parametrize("key", [KEY + "\n", " " + KEY, KEY + "\t", "sk-a\x1bbcdef"])
def test_a_key_with_whitespace_or_controls_is_bad_input_and_not_shown(
        tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with HostileServer() as srv:
        code = _eval(srv, suite, tmp_path / "run")
    err = capsys.readouterr().err
    assert code == 2 and key.strip() not in err and "OPENAI_API_KEY" in err
    assert len(err.strip().splitlines()) == 1


def test_url_credentials_never_reach_the_output(tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with HostileServer(lambda h, p, b: send_json(h, 403, {"error": "no"}) if p.endswith("/models") else False) as srv:
        url = srv.url.replace("http://", "http://bob:hunter2secret@") + "?token=qq"
        code = main(["eval", "-m", "openai:m", "--base-url", url, "-s", str(suite), "--out", str(tmp_path / "r"),
                     "--store", str(tmp_path / "s.sqlite"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "hunter2secret" not in err and "qq" not in err


# ---- 3. deadlines and a size limit ----------------------------------------------------------------------

def test_a_trickling_server_is_cut_at_the_attempt_timeout(tmp_path: Path, suite: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    def slow(handler: Any, path: str, body: dict[str, Any]) -> bool:
        return trickle(handler, 30) if path.endswith("/completions") and "Paris" not in str(body.get("prompt")) \
            else False

    with HostileServer(slow) as srv:
        start = time.monotonic()
        code = _eval(srv, suite, tmp_path / "run", "--timeout", "2", "--retries", "0", "--concurrency", "16")
        took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 5 and "--timeout 2" in err, err
    assert took < 8, took  # 12 requests at once, each cut at 2 s (the server trickles for 30 s)


def test_the_budget_bounds_the_whole_run_mid_request(tmp_path: Path, suite: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    def slow(handler: Any, path: str, body: dict[str, Any]) -> bool:
        return trickle(handler, 60) if path.endswith("/completions") and "Paris" not in str(body.get("prompt")) \
            else False

    with HostileServer(slow) as srv:
        start = time.monotonic()
        code = _eval(srv, suite, tmp_path / "run", "--timeout", "30", "--budget", "3", "--retries", "0")
        took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 5 and "--budget" in err, err
    assert took < 8, took


def test_a_huge_response_is_refused_while_streaming(tmp_path: Path, suite: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    def huge(handler: Any, path: str, body: dict[str, Any]) -> bool:
        if path.endswith("/completions") and "Paris" not in str(body.get("prompt")):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()  # no length: the body runs until the connection closes
            try:
                for _ in range(64):
                    handler.wfile.write(b" " * 2**20)
            except OSError:
                pass
            handler.close_connection = True
            return True
        return False

    with HostileServer(huge) as srv:
        code = _eval(srv, suite, tmp_path / "run", "--max-response-mb", "1", "--retries", "3")
        requests = srv.requests
    err = capsys.readouterr().err
    assert code == 5 and "--max-response-mb" in err, err
    assert requests <= 1 + 12  # the probe and one attempt per request (9 choices, 3 texts): an oversized reply is not retried


@pytest.mark.parametrize("args", [["--timeout", "-1"], ["--timeout", "nan"], ["--timeout", "inf"],
                                  ["--budget", "0"], ["--retries", "-1"], ["--max-response-mb", "nan"]])
def test_bad_endpoint_numbers_are_exit_2(tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture,
                                         args: list[str]) -> None:
    with HostileServer() as srv:
        with pytest.raises(SystemExit) as exc:
            _eval(srv, suite, tmp_path / "run", *args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and args[0] in err, err


# ---- 8. a malformed answer is a failed request, never a score ------------------------------------------

def _mangled(change: str) -> dict[str, Any]:
    def reply(prompt: str) -> dict[str, Any]:
        lp = honest_logprobs(prompt)
        if change == "short_values":
            lp["token_logprobs"] = lp["token_logprobs"][:2]
        elif change == "short_all":
            lp = {k: v[:2] for k, v in lp.items()}
        elif change == "nan":
            lp["token_logprobs"] = [None] + [math.nan] * (len(lp["tokens"]) - 1)
        elif change == "positive":
            lp["token_logprobs"] = [None] + [3.0] * (len(lp["tokens"]) - 1)
        elif change == "strings":
            lp["token_logprobs"] = [None] + ["-0.5"] * (len(lp["tokens"]) - 1)
        elif change == "none_inside":
            lp["token_logprobs"] = [None] * len(lp["tokens"])
        elif change == "top_not_dict":
            lp["top_logprobs"] = [None] + [["x"]] * (len(lp["tokens"]) - 1)
        elif change == "no_logprobs":
            return {"choices": [{"text": prompt}]}
        elif change == "choices_not_list":
            return {"choices": "yes"}
        elif change == "json_list":
            return []  # type: ignore[return-value]
        return {"choices": [{"text": prompt + " x", "logprobs": lp}]}
    return {"reply": reply}


@pytest.mark.parametrize("change", ["short_values", "short_all", "nan", "positive", "strings", "none_inside",
                                    "top_not_dict", "no_logprobs", "choices_not_list", "json_list"])
def test_malformed_logprobs_are_failed_requests(tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture,
                                                change: str) -> None:
    make = _mangled(change)["reply"]

    def mangle(handler: Any, path: str, body: dict[str, Any]) -> bool:
        prompt = str(body.get("prompt"))
        if path.endswith("/completions") and body.get("echo") and "Paris" not in prompt:
            text = json.dumps(make(prompt), allow_nan=True)
            data = text.encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return True
        return False

    with HostileServer(mangle) as srv:
        code = _eval(srv, suite, tmp_path / "run", "--retries", "0")
    err = capsys.readouterr().err
    assert code == 5, err
    assert not (tmp_path / "run" / "results.json").exists()
    errors = (tmp_path / "run" / "errors.jsonl").read_text()
    assert "malformed" in errors


def test_generate_with_a_malformed_message_is_a_failed_request(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.conftest import GEN_TASK

    suite = write_suite(tmp_path / "gsuite", GEN_TASK, {"data/mc.jsonl": MC_ROWS[:2]})

    def bad_chat(handler: Any, path: str, body: dict[str, Any]) -> bool:
        if path.endswith("/chat/completions"):
            return send_json(handler, 200, {"choices": [{"message": {"content": ["not", "text"]}}]})
        return False

    with HostileServer(bad_chat) as srv:
        code = _eval(srv, suite, tmp_path / "run", "--retries", "0")
    assert code == 5, capsys.readouterr().err
    assert "malformed" in (tmp_path / "run" / "errors.jsonl").read_text()


def test_a_malformed_reply_is_retried_like_a_5xx(tmp_path: Path, suite: Path, capsys: pytest.CaptureFixture) -> None:
    """The first answer to each request is cut short (a proxy hiccup); the retry gets an honest one."""
    seen: set[str] = set()

    def first_short(handler: Any, path: str, body: dict[str, Any]) -> bool:
        prompt = str(body.get("prompt"))
        if path.endswith("/completions") and body.get("echo") and "Paris" not in prompt and prompt not in seen:
            seen.add(prompt)
            lp = honest_logprobs(prompt)
            lp["token_logprobs"] = lp["token_logprobs"][:1]
            return send_json(handler, 200, {"choices": [{"text": prompt, "logprobs": lp}]})
        return False

    with HostileServer(first_short) as srv:
        code = _eval(srv, suite, tmp_path / "run", "--retries", "2")
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "results.json").exists()


def test_a_response_limit_above_what_the_run_file_holds_is_refused(tmp_path: Path, suite: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    with HostileServer() as srv:
        code = _eval(srv, suite, tmp_path / "run", "--max-response-mb", "100")
    err = capsys.readouterr().err
    assert code == 2 and "--max-response-mb" in err and len(err.strip().splitlines()) == 1, err


def test_a_key_echoed_into_a_completion_is_not_stored(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import GEN_TASK

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    suite = write_suite(tmp_path / "gsuite", GEN_TASK, {"data/mc.jsonl": MC_ROWS[:2]})

    def echo_chat(handler: Any, path: str, body: dict[str, Any]) -> bool:
        if path.endswith("/chat/completions"):
            return send_json(handler, 200, {"choices": [{"message": {"content": f"your key is {KEY}"}}]})
        return False

    with HostileServer(echo_chat) as srv:
        code = _eval(srv, suite, tmp_path / "run")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert KEY not in _everything_written(tmp_path) + out.out + out.err
    import sqlite3

    dump = "\n".join(sqlite3.connect(tmp_path / "store.sqlite").iterdump())
    assert KEY not in dump
