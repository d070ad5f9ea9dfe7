"""The endpoint backend's parts that need no server (the server tests are tests/integration/test_endpoint.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.core.api import UserError
from harness.data.runs import Run
from harness.decide.compare import backends_note
from harness.models import load_backend
from harness.models.openai import CHAT_PREFIX, OpenAIBackend, _split, redact_url


def test_url_secrets_are_redacted() -> None:
    assert redact_url("https://user:pw@host.example/v1?key=abc") == "https://host.example/v1"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_context_spaces_move_to_the_continuation_as_in_process() -> None:
    assert _split("Answer: ", "yes") == ("Answer:", " yes")
    assert _split("Answer:", " yes") == ("Answer:", " yes")


def test_spec_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="needs --base-url"):
        load_backend("openai:m")
    with pytest.raises(UserError, match="not an http"):
        load_backend("openai:m", base_url="ftp://x")
    with pytest.raises(UserError, match="MY_MISSING_KEY .* is not set"):
        load_backend("openai:m", base_url="http://127.0.0.1:1/v1", api_key_env="MY_MISSING_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    backend = load_backend("openai:m", dtype="auto", device="auto", batch_size=8)  # in-process options: ignored
    assert isinstance(backend, OpenAIBackend) and backend.label == "openai:m"
    assert "sk-secret-value" not in repr(backend)
    prompt = backend.apply_chat_template("hi", "be brief")
    assert prompt.startswith(CHAT_PREFIX) and '"role": "system"' in prompt


def test_unreachable_url_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from tests.integration.llama_server import free_port

    code = main(["eval", "-m", "openai:m", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "-s", "basics", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot reach" in err


def test_refusal_names_the_task_and_its_generate_variant(capsys) -> None:
    code = main(["eval", "-m", "fake:chat?caps=generate,chat_template", "-s", "medical", "--limit", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "medical/pubmedqa_mc" in err and "generate variant medical/pubmedqa_gen" in err


def _run(fp: dict) -> Run:
    return Run({"model": {"fingerprint": fp}, "suites": {}}, [], Path("."), "x")


def test_comparison_says_when_backends_differ() -> None:
    cpu = _run({"backend": "hf", "device": "cpu", "dtype": "float32"})
    old = _run({"backend": "hf"})  # recorded before devices were: the CPU in float32
    gpu = _run({"backend": "hf", "device": "cuda", "dtype": "bfloat16"})
    served = _run({"backend": "openai", "weights": "an endpoint cannot be fingerprinted by its weights"})
    assert backends_note(cpu, old) is None
    assert "hf, cuda bfloat16" in (backends_note(cpu, gpu) or "")
    note = backends_note(cpu, served) or ""
    assert "in process (hf, cpu float32)" in note and "through openai" in note and "not fingerprinted" in note
