"""Strict configuration files (suites, gates, recipes): YAML with line numbers, pydantic validation,
and every problem as one UserError naming the file, the field and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.core.api import UserError
from harness.core.fileio import require_file


class Strict(BaseModel):
    """Base of every user-written configuration model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class FrozenStrict(BaseModel):
    """A strict model whose instances are immutable (hashable specs: suites, recipes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers); one-line errors for unreadable input. `loader`
    is a SafeLoader, or a subclass with extra tags (lm-eval's `!function`)."""
    path = Path(path)
    require_file(path)  # a FIFO would block the read forever
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start})", source=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        return parse_yaml(text, str(path), loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", source=str(path),
                        line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise UserError("malformed YAML: nested too deeply", source=str(path)) from None


MAX_YAML_NODES = 1_000_000  # what a YAML document may expand to (aliases counted at every use)


def parse_yaml(text: str, source: str, loader_cls: type[yaml.SafeLoader] = yaml.SafeLoader
               ) -> tuple[Any, yaml.Node | None]:
    """The document (safe types only) and its node tree, refused when it would expand past MAX_YAML_NODES
    nodes: `&a [*a, *a]` nested ten deep is a few lines that `str()` or a JSON dump expands to billions."""
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            size = expanded_size(node)
            if size > MAX_YAML_NODES:
                raise UserError(f"the YAML expands to more than {MAX_YAML_NODES} nodes (aliases to aliases: an "
                                "alias bomb?)", source=source)
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, counted without expanding (memoised per node); a
    cycle counts as too large."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            return MAX_YAML_NODES + 1  # a recursive structure expands forever
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def parse_model(model: type[BaseModel], raw: Any, node: yaml.Node | None, source: str) -> Any:
    """Validate `raw` against a pydantic model; the first error becomes a UserError with field and line."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))]
        msg = "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise UserError(msg, source=source, field=_dotted(loc, raw), line=line_of(node, loc)) from None


def _dotted(loc: list[Any], raw: Any) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            name = raw[part].get("name") if isinstance(raw, list) and part < len(raw) and isinstance(raw[part], dict) else None
            out += f"[{name or part}]"
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
        else:
            out += f".{part}" if out else str(part)
            raw = raw.get(part) if isinstance(raw, dict) else None
    return out


def line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == part]
            if not match:
                break
            line, node = match[0][0].start_mark.line + 1, match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
