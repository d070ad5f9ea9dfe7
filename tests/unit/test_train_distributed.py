"""SFT-LoRA and DPO-LoRA on 2 CPU processes (torchrun, gloo): world size 2 and a saved adapter.

Run once: a failure here is a failure, never retried. The entry point destroys the process group before
exit, so both ranks end cleanly and the launcher has nothing to report.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.train_helpers import provenance, write_recipe

pytestmark = pytest.mark.slow  # real training or several processes: the full tier only

TORCHRUN = Path(sys.executable).with_name("torchrun")


def free_port() -> int:
    # torchrun's --master_port=0 hangs the static rendezvous here, so pick a free port ourselves.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_two_process_training(method: str, tiny_model: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, f"{method}-lora", tiny_model, method)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "TUNEGATE_STORE": str(tmp_path / "store.sqlite")}
    cmd = [str(TORCHRUN), "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "harness.train", str(recipe)]
    done = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / f"{method}-lora"
    prov = provenance(out)
    assert prov["world_size"] == 2
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert "ChildFailedError" not in done.stderr
