"""Every command the README shows is run here, in order, so the README cannot drift from the code.

Long commands run at their smallest sizes: evaluations get `--limit 2` and generate at most 16 new tokens (the
suites are read from the scratch copy, through $TUNEGATE_SUITES_PATH), training recipes run 2 steps on 8 rows
without the held-out loss passes, and the review server is opened, fetched once and stopped. `make` lines are
checked against the Makefile's targets. Each command's seconds go to $TUNEGATE_README_TIMINGS when it is set.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.integration.scratch import capped_suites

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MAY_FAIL_GATE = {"gate"}  # a real gate may honestly fail (1) or be inconclusive (3); 2 and 4 are errors


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


def workspace(tmp: Path) -> Path:
    """A copy of what the commands read (suites, recipes, gate files, task files) in a scratch directory."""
    for name in ("benchmarks", "configs", "reports"):
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("demo*", "__pycache__"))
    capped_suites(tmp / "suites")  # generation is what the long commands spend their time on
    shutil.copytree(ROOT / "adapters", tmp / "adapters", ignore=shutil.ignore_patterns("*-quick", ".demo"),
                    dirs_exist_ok=True)
    for recipe in (tmp / "adapters").glob("*.yaml"):
        raw = yaml.safe_load(recipe.read_text())
        # few steps, but a large enough rate that the adapter visibly changes answers (the review needs pairs)
        raw["train"] = {**raw.get("train", {}), "max_steps": 2, "batch_size": 2, "learning_rate": 5e-3}
        raw["data"] = {**raw["data"], "limit": 8, "eval_limit": 4}
        raw["eval"] = {"suites": [], "held_out_loss": False}
        recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp


def smaller(command: str, cwd: Path) -> list[str]:
    args = []
    for arg in shlex.split(command):  # expand globs as the shell would
        matches = sorted(str(p.relative_to(cwd)) for p in cwd.glob(arg)) if "*" in arg else []
        args += matches or [arg]
    if "eval" in args and "--limit" not in args:
        args += ["--limit", "2"]
    elif "--limit" in args:
        args[args.index("--limit") + 1] = "2"
    if args[0] == "tunegate":
        args[0] = str(BIN / "tunegate")
    elif args[0] in ("torchrun", "accelerate"):
        args[0] = str(BIN / args[0])
    return args


def run_review_server(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    import httpx

    proc = subprocess.Popen(args + ["--port", "8793"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        url, seen = None, []
        while time.time() < deadline and url is None:
            seen.append(proc.stdout.readline())
            match = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", seen[-1])
            url = match.group(1) if match else None
            assert proc.poll() is None or url, f"review server exited early: {''.join(seen)[-2000:]}"
        assert url, "the review server never printed its address"
        page = None
        for _ in range(60):  # the address is printed just before uvicorn starts listening
            try:
                page = httpx.get(url, follow_redirects=True, timeout=30)
                break
            except httpx.ConnectError:
                time.sleep(0.5)
        assert page is not None and page.status_code == 200 and "tunegate" in page.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_readme_commands_run(tmp_path: Path) -> None:
    commands = readme_commands()
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in commands and "make test" in commands
    cwd = workspace(tmp_path)
    env = {**os.environ, "TUNEGATE_STORE": str(tmp_path / "store.sqlite"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT), "TUNEGATE_SUITES_PATH": str(cwd / "suites")}
    servers: list = []  # a llama.cpp server for the endpoint commands, started on first use
    try:
        ran = _run_commands(commands, makefile, cwd, env, servers)
    finally:
        for server in servers:
            server.stop()
    assert ran >= 15


def _run_commands(commands: list[str], makefile: str, cwd: Path, env: dict[str, str], servers: list) -> int:
    ran = 0
    for command in commands:
        if "path/to/" in command:  # a user's own lm-eval task files: tests/unit/test_lmeval_stock.py runs the
            assert "tunegate eval -s path/to/" in command, command  # stock ones on written rows
            continue
        if "--base-url" in command:  # an endpoint model: a real llama.cpp server on a free port
            from tests.integration.llama_server import LlamaServer

            if not servers:
                servers.append(LlamaServer(log=cwd / "llama-server.log").start())
                env["OPENAI_API_KEY"] = servers[0].api_key
            command = re.sub(r"--base-url \S+", f"--base-url {servers[0].url}", command)
        if command.startswith("make "):
            assert re.search(rf"^{command.split()[1]}:", makefile, flags=re.M), command
            continue
        args = smaller(command, cwd)
        if args[1:2] == ["review"] and args[2:3] != ["export"]:
            run_review_server(args, cwd, env)
            ran += 1
            continue
        began = time.perf_counter()
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if os.environ.get("TUNEGATE_README_TIMINGS"):
            with open(os.environ["TUNEGATE_README_TIMINGS"], "a", encoding="utf-8") as fh:
                fh.write(f"{time.perf_counter() - began:7.1f} s  {command[:110]}\n")
        allowed = {0, 1, 3} if args[1] in MAY_FAIL_GATE or "--until-decided" in args else {0}
        assert proc.returncode in allowed, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran += 1
    return ran
