"""Every import between harness modules follows DESIGN.md's layer table, and the full graph has no cycle.

The graph here counts every import statement: module level, function-local and `if TYPE_CHECKING:` ones
(`tests/unit/test_import_cycles.py` parses the same way). A module's layer is its folder under `harness/`;
the table says which layers a layer may import. A module may always import modules of its own layer.
"""

from __future__ import annotations

import re

from tests.unit.test_import_cycles import ROOT, find_cycles, harness_modules, import_graph

# The table in DESIGN.md ("Layers"). Keep the two in step: test_design_md_lists_the_same_table checks it.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "inference": {"core"},
    "data": {"core"},
    "storage": {"core"},
    "models": {"core"},
    "scoring": {"core", "data", "models"},
    "run": {"core", "data", "models", "scoring", "storage"},
    "decide": {"core", "inference", "data", "scoring"},
    "train": {"core", "data", "models", "scoring", "storage", "run"},
    "report": {"core", "inference", "data", "storage", "scoring", "decide"},
    "review": {"core", "inference", "data", "storage", "decide"},
    "builtin_suites": {"core", "data"},
    "flows": {"core", "inference", "data", "storage", "models", "scoring", "run", "decide", "train", "report"},
    "cli": {"core", "inference", "data", "storage", "models", "scoring", "run", "decide", "train", "report",
            "review", "flows"},
}


def layer_of(module: str) -> str:
    """`harness.decide.gate` -> decide; the package root `harness` (version only) counts as core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"


def full_import_graph() -> dict[str, set[str]]:
    """Every harness-to-harness import, wherever the statement sits."""
    return import_graph(every_statement=True)


def violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        src = layer_of(module)
        for target in sorted(targets):
            dst = layer_of(target)
            if dst != src and dst not in ALLOWED[src] and target != "harness":
                out.append(f"{module} ({src}) imports {target} ({dst})")
    return out


def test_every_module_sits_in_a_known_layer() -> None:
    unknown = sorted({layer_of(m) for m in harness_modules()} - set(ALLOWED))
    assert not unknown, f"modules outside the layer table: {unknown}"


def test_every_import_goes_down_the_layers() -> None:
    bad = violations(full_import_graph())
    assert not bad, "imports against DESIGN.md's layer table:\n" + "\n".join(bad)


def test_no_cycle_even_counting_local_and_type_checking_imports() -> None:
    cycles = find_cycles(full_import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_local_and_type_checking_imports() -> None:
    graph = full_import_graph()
    assert violations({"harness.core.x": {"harness.decide.gate"}}) == [
        "harness.core.x (core) imports harness.decide.gate (decide)"]
    assert all(layer_of(t) in ALLOWED["decide"] | {"decide"} for t in graph["harness.decide.gate"] - {"harness"})


def test_design_md_lists_the_same_table() -> None:
    text = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)/` \| [^|]+ \| ([^|]*) \|$", text, flags=re.M))
    table = {layer: {x.strip(" `") for x in may.split(",") if x.strip(" `—-")} for layer, may in rows.items()}
    assert table == ALLOWED
