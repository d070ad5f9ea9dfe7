"""The endpoint backend against a real llama.cpp server serving the embedded GGUF, started here on a free port.

Also: agreement with the in-process backend on the same model, a server killed mid-run then `--resume`,
429/500 from a fault-injecting proxy in front of the real server, and one-line exit-2 errors.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.data.suite import SUITES_PATH_VAR, load_suite
from tests.integration.llama_server import MODEL_NAME, LlamaServer, free_port
from tests.integration.scratch import capped_suites

pytestmark = [pytest.mark.integration]
SPEC = f"openai:{MODEL_NAME}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    srv = LlamaServer(log=tmp_path_factory.mktemp("llama") / "server.log").start()
    yield srv
    srv.stop()


@pytest.fixture
def key_env(server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    return server.api_key


def _eval(url: str, *args: str) -> int:
    # llama.cpp's server answers one request at a time: a short queue keeps each within its timeout
    extra = [] if "--concurrency" in args else ["--concurrency", "2"]
    return main(["eval", "-m", SPEC, "--base-url", url, "-q", *extra, *args])


class FaultProxy:
    """A threaded HTTP proxy in front of the real server that answers some requests itself with an error.

    `plan(body) -> status or None`: a status makes the proxy answer that status instead of forwarding."""

    def __init__(self, upstream: str, plan) -> None:
        self.upstream, self.plan, self.seen = upstream.rstrip("/"), plan, []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((method, self.path, body))
                status = proxy.plan(method, self.path, body)
                if status is not None:
                    payload = json.dumps({"error": {"message": f"injected {status}"}}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                reply = httpx.request(method, proxy.upstream + self.path.removeprefix("/v1"), content=body,
                                      headers=headers, timeout=120)
                content = proxy.rewrite(self.path, reply.content)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def rewrite(self, path: str, content: bytes) -> bytes:
        return content

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- a built-in multiple-choice suite and a generation suite through the endpoint --------------------------

@pytest.mark.slow
def test_medical_and_legal_through_the_endpoint(server: LlamaServer, key_env: str, tmp_path: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # every task as shipped, generated answers capped at a few tokens (the server generates one at a time)
    monkeypatch.setenv(SUITES_PATH_VAR, str(capped_suites(tmp_path / "suites")))
    out = tmp_path / "run"
    assert _eval(server.url, "-s", "medical", "-s", "legal", "--limit", "1", "--out", str(out)) == 0
    results = json.loads((out / "results.json").read_text())
    for name in ("medical", "legal"):
        tasks = results["suites"][name]["tasks"]
        assert set(tasks) == {t.name for t in load_suite(name).tasks}
        for task in tasks.values():
            assert task["n"] == 1 and task["metrics"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    mc = [s for s in samples if s["logliks"]]
    gen = [s for s in samples if s["response"] is not None and not s["logliks"]]
    assert mc and gen and all(len(s["logliks"]) == len(s["choices"]) for s in mc)
    assert all(ll < 0 for s in mc for ll in s["logliks"])
    assert any(s["response"].strip() for s in gen)  # the model answered, through chat completions
    fp = results["model"]["fingerprint"]
    assert fp["backend"] == "openai" and fp["server_model"]["id"] == MODEL_NAME
    assert "cannot be fingerprinted by its weights" in fp["weights"]
    timing = results["timing"]
    assert timing["requests"] > 0 and timing["requests_per_second"] > 0 and timing["completion_tokens"] > 0
    # the same command again is answered from the cache, with no request sent
    assert _eval(server.url, "-s", "medical", "-s", "legal", "--limit", "1", "--out", str(tmp_path / "again")) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["timing"]["cache_misses"] == 0 and again["timing"]["requests"] == 0
    # the key is nowhere: results, samples, the store, terminal output, logs
    printed = capsys.readouterr()
    places = {"stdout": printed.out, "stderr": printed.err}
    for path in [*out.iterdir(), *tmp_path.rglob("store.sqlite*"), *tmp_path.rglob("*.log")]:
        places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaked = [where for where, text in places.items() if key_env in text]
    assert not leaked, leaked
    assert len(places) >= 5


def test_a_cached_prompt_prefix_scores_as_a_fresh_prompt(server: LlamaServer) -> None:
    """The launcher keeps the context's prompt prefix between scoring requests (the choices of one question):
    each choice's logprobs equal those of the same prompt scored after an unrelated one, which starts afresh."""
    question = "Question: Which organ pumps blood through the body of a human being?\nAnswer:"
    choices = [" The heart", " The liver", " The heart muscle"]

    def score(prompt: str) -> list[float | None]:
        body = {"model": MODEL_NAME, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "echo": True,
                "logprobs": 1}
        reply = httpx.post(f"{server.url}/completions", json=body, timeout=120,
                           headers={"Authorization": f"Bearer {server.api_key}"})
        reply.raise_for_status()
        return reply.json()["choices"][0]["logprobs"]["token_logprobs"]

    in_a_row = [score(question + c) for c in choices]  # the second and third reuse the question's rows
    fresh = []
    for c in choices:
        score("An unrelated prompt that shares no prefix.")  # the next prompt cannot reuse anything
        fresh.append(score(question + c))
    for kept, alone in zip(in_a_row, fresh):
        assert len(kept) == len(alone) and kept[0] is None and alone[0] is None
        assert max(abs(a - b) for a, b in zip(kept[1:], alone[1:])) < 1e-4


@pytest.mark.slow
def test_in_process_and_endpoint_agree(server: LlamaServer, key_env: str, tmp_path: Path, capsys) -> None:
    """Same GGUF: the in-process model is its dequantised copy, llama.cpp runs the quantised kernels."""
    # one question per legal task (27, 54 choices): the README's figures are from --limit 2 (54 questions)
    # the multiple-choice tasks only: the judged `rule_explain` is chat-templated, and a chat prompt is rendered
    # in process by tunegate but by the server through an endpoint, so compare refuses to pair it (by design)
    common = ["-s", "legal/[!r]*", "--limit", "1", "-q"]
    assert main(["eval", "-m", MODEL_NAME, "--out", str(tmp_path / "local"), *common]) == 0
    assert _eval(server.url, "--out", str(tmp_path / "served"), *common) == 0
    local = _samples(tmp_path / "local")
    served = _samples(tmp_path / "served")
    assert local.keys() == served.keys()
    mc = [k for k in local if local[k]["choices"]]
    diffs = [abs(a - b) for k in mc for a, b in zip(local[k]["logliks"], served[k]["logliks"])]
    same = [_argmax(local[k]["logliks"]) == _argmax(served[k]["logliks"]) for k in mc]
    share = sum(same) / len(same)
    with capsys.disabled():
        print(f"\nagreement on legal (n={len(same)} questions, {len(diffs)} choices): median |Δ loglik| "
              f"{statistics.median(diffs):.3f}, max {max(diffs):.3f}, same choice {share:.0%}")
    assert statistics.median(diffs) < 0.5 and max(diffs) < 3.0
    assert share >= 0.8
    # a gate between the in-process baseline and the endpoint candidate works, and says the backends differ
    gate = tmp_path / "gate.yaml"
    gate.write_text("version: 1\nrules:\n  - name: legal does not regress\n    suite: legal\n    non_inferiority: 0.5\n")
    code = main(["gate", str(gate), "--baseline", str(tmp_path / "local"), "--candidate", str(tmp_path / "served")])
    text = capsys.readouterr().out
    assert code in (0, 1, 3), text  # six items: any verdict; the point is that the comparison runs
    assert "the backends differ" in text and "in process (hf, cpu float32)" in text and "through openai" in text


def _samples(run: Path) -> dict[tuple[str, str], dict]:
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return {(r["task"], r["sample_id"]): r for r in rows}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


# ---- failures: a killed server, injected 429/500 ---------------------------------------------------------

def test_server_killed_mid_run_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    own = LlamaServer(log=tmp_path / "own.log").start()
    monkeypatch.setenv("OPENAI_API_KEY", own.api_key)
    store = tmp_path / "store.sqlite"
    args = ["-s", "basics", "--limit", "6", "--batch-size", "2", "--concurrency", "2", "--retries", "1",
            "--timeout", "10", "--out", str(tmp_path / "run")]

    def kill_after_first_commit() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(store) as db:
                    if db.execute("SELECT COUNT(*) FROM records").fetchone()[0] >= 2:
                        own.kill()
                        return
            except sqlite3.Error:
                pass
            time.sleep(0.05)

    killer = threading.Thread(target=kill_after_first_commit)
    killer.start()
    try:
        first = _eval(own.url, *args)
        killer.join()
        err = capsys.readouterr().err
        assert first == 5, err
        assert "rerun the same command with --resume" in err and err.count("\n") == 1
        failed = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
        # SIGKILL mid-request: a reset connection, a refused one, or a request that never got its answer
        assert failed and all(any(w in f["error"] for w in ("connection failed", "HTTP", "no answer within"))
                              for f in failed), failed
        assert not (tmp_path / "run" / "results.json").exists()  # nothing half-written
        own.start()  # the same port again
        assert _eval(own.url, *args, "--resume") == 0
        results = json.loads((tmp_path / "run" / "results.json").read_text())
        assert results["timing"]["resumed"] is True
        assert all(t["n"] == 6 for t in results["suites"]["basics"]["tasks"].values())
    finally:
        own.stop()


def test_429_and_500_are_retried_and_a_lasting_failure_is_recorded(server: LlamaServer, key_env: str,
                                                                   tmp_path: Path, capsys) -> None:
    attempts: dict[bytes, int] = {}
    lasting = {"on": True}
    poison = load_suite("basics").tasks[0].samples(3, False)[2].prompt.rstrip()

    def plan(method: str, path: str, body: bytes):
        if method != "POST":
            return None
        if lasting["on"] and poison in str(json.loads(body).get("prompt", "")):
            return 500
        # every request fails on its first attempt, alternately 429 and 500, whatever the order of concurrent
        # requests (a shared counter let two interleaved requests keep landing on the failing slots)
        attempts[body] = attempts.get(body, 0) + 1
        return (429 if len(attempts) % 2 else 500) if attempts[body] == 1 else None

    with FaultProxy(server.url, plan) as proxy:
        args = ["-s", "basics", "--limit", "3", "--retries", "3", "--out", str(tmp_path / "run")]
        code = _eval(proxy.url, *args)
        err = capsys.readouterr().err
        assert code == 5, err
        failed = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
        assert len(failed) >= 1 and all("HTTP 500" in f["error"] and "after 4 attempts" in f["error"] for f in failed)
        lasting["on"] = False
        assert _eval(proxy.url, *args, "--resume") == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["timing"]["retries"] > 0  # the resumed part also met (and retried) injected 429s and 500s
    assert all(t["n"] == 3 for t in results["suites"]["basics"]["tasks"].values())


# ---- one line, exit 2 ------------------------------------------------------------------------------------

def _one_line_exit_2(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tunegate: error:"), err
    for word in words:
        assert word in err, err
    return err


def test_wrong_key_wrong_url_unknown_model(server: LlamaServer, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    assert _eval(server.url, "-s", "basics", "--limit", "1") == 2
    err = _one_line_exit_2(capsys, "refused the API key", "$OPENAI_API_KEY", "--api-key-env")
    assert "sk-wrong" not in err
    monkeypatch.setenv("MY_KEY", server.api_key)
    assert main(["eval", "-m", SPEC, "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--api-key-env", "MY_KEY",
                 "-s", "basics", "--limit", "1", "-q"]) == 2
    _one_line_exit_2(capsys, "cannot reach", "--base-url")
    assert main(["eval", "-m", "openai:no-such-model", "--base-url", server.url, "--api-key-env", "MY_KEY",
                 "-s", "basics", "--limit", "1", "-q"]) == 2
    _one_line_exit_2(capsys, "model 'no-such-model' is not served", MODEL_NAME)
    assert main(["eval", "-m", SPEC, "-s", "basics", "--limit", "1", "-q"]) == 2
    _one_line_exit_2(capsys, "needs --base-url")


def test_no_prompt_logprobs_refuses_loglikelihood_tasks_first(server: LlamaServer, key_env: str, capsys) -> None:
    class NoLogprobs(FaultProxy):
        def rewrite(self, path: str, content: bytes) -> bytes:
            data = json.loads(content)
            for choice in data.get("choices", []):
                choice["logprobs"] = None
            return json.dumps(data).encode()

    with NoLogprobs(server.url, lambda *a: None) as proxy:
        assert _eval(proxy.url, "-s", "medical", "--limit", "1") == 2
        err = _one_line_exit_2(capsys, "medical/pubmedqa_mc", "loglikelihood", "no prompt logprobs",
                               "generate variant medical/pubmedqa_gen")
        scoring = [p for m, p, b in proxy.seen if m == "POST" and b"\"echo\"" in b]
        assert len(scoring) == 1, err  # the probe only: no scoring request was sent


def test_stock_llama_cpp_python_server_is_refused_for_loglikelihood(tmp_path: Path, monkeypatch, capsys) -> None:
    """llama-cpp-python's own server scores each echoed token by the distribution after it: detected, refused."""
    stock = LlamaServer(log=tmp_path / "stock.log", fixed=False).start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", stock.api_key)
        assert _eval(stock.url, "-s", "basics", "--limit", "1") == 2
        _one_line_exit_2(capsys, "shifted by one token", "llama-cpp-python#1983", "harness.models.llama_cpp_server")
    finally:
        stock.stop()
