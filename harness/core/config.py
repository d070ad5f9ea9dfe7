"""Strict configuration files (suites, gates, recipes): YAML with line numbers, pydantic validation,
and every problem as one UserError naming the file, the field and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.core.api import UserError


class Strict(BaseModel):
    """Base of every user-written configuration model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class FrozenStrict(BaseModel):
    """A strict model whose instances are immutable (hashable specs: suites, recipes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers); one-line errors for unreadable input."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start})", source=str(path)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", source=str(path),
                        line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise UserError("malformed YAML: nested too deeply", source=str(path)) from None


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
