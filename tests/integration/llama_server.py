"""Start and stop a real llama.cpp server (llama-cpp-python) on 127.0.0.1 serving the embedded GGUF.

Used by the endpoint tests and by benchmarks/bench_endpoint.py. `make setup` installs llama-cpp-python[server].
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MODEL_NAME = "smollm2-135m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """One llama.cpp server process; `start()` waits until it answers, `stop()` ends it."""

    port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: "sk-tunegate-test-" + secrets.token_hex(12))
    log: Path | None = None
    fixed: bool = True  # through harness.models.llama_cpp_server (echoed prompt logprobs fixed); False: stock
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180.0) -> LlamaServer:
        from harness.models.source import embedded_gguf

        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:  # a missing server is a broken setup, never a skip
            raise RuntimeError("llama-cpp-python[server] is not installed: run `make setup`") from exc
        module = "harness.models.llama_cpp_server" if self.fixed else "llama_cpp.server"
        cmd = [sys.executable, "-m", module, "--model", str(embedded_gguf(MODEL_NAME)),
               "--model_alias", MODEL_NAME, "--logits_all", "true", "--host", "127.0.0.1", "--port", str(self.port),
               "--api_key", self.api_key, "--n_ctx", "2048", "--n_threads", os.environ.get("OMP_NUM_THREADS", "2"),
               "--verbose", "false"]  # one thread per test worker (conftest), as torch gets
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode} (log: {self.log})")
            try:
                reply = httpx.get(f"{self.url}/models", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=2)
                if reply.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer within {timeout:.0f} s (log: {self.log})")

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as a crashed one would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
