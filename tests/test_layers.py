"""The package's layers point one way: an import scan (``ast``) of every module under hwnas/.

Lowest first:  errors/io/logs/progress/stats/accelerator  →  space  →  latency/data/train  →
convert  →  device_profiler  →  search/supernet/export  →  cli (and the test doubles in
hwnas.testing).
A module may import its own package, anything in a lower layer, and another package of its
own layer as long as the packages do not import each other round a cycle.  Imports inside
functions (lazy ones) count like the others: a lazy import still ties the two packages.

Inside ``hwnas.search`` the same rule orders its parts: ``base``/``baselines`` (shared) →
the strategies (``evolution``, ``mnasnet``) → ``fbnet`` (its refinement uses evolution's
operators) → the entry (``hwnas/search/__init__.py``) and ``cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hwnas

ROOT = Path(hwnas.__file__).parent

LAYERS = (
    ("hwnas", "errors", "io", "logs", "progress", "stats", "accelerator"),  # root: __version__ only
    ("space",),
    ("latency", "data", "train"),
    ("convert",),
    ("device_profiler",),
    ("search", "supernet", "export"),
    ("cli", "testing"),
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}

# (importing unit, imported unit): why the edge may break the order.  Empty: none may.
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every hwnas module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:  # `from hwnas import convert` imports the module hwnas.convert
                sub = f"{target}.{a.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m == "hwnas" or m.startswith("hwnas.")}


def unit(module: str) -> str:
    """The layer unit of a module: its package (or module) right under hwnas."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hwnas"


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) → the module-level imports behind it."""
    mods = modules()
    out: dict[tuple[str, str], list[str]] = {}
    for name, path in mods.items():
        for target in imports(name, path, set(mods)):
            pair = (unit(name), unit(target))
            if pair[0] != pair[1]:
                out.setdefault(pair, []).append(f"{name} -> {target}")
    return out


def test_every_module_is_in_a_layer():
    missing = sorted({unit(m) for m in modules()} - set(LAYER))
    assert not missing, f"place these under hwnas/ in LAYERS: {missing}"


def test_imports_point_down_the_layers():
    wrong = [
        f"{', '.join(why)} ({LAYER[a]} imports {LAYER[b]})"
        for (a, b), why in sorted(edges().items())
        if LAYER[b] > LAYER[a] and (a, b) not in ALLOWED
    ]
    assert not wrong, "imports up the layers:\n" + "\n".join(wrong)


def test_no_package_level_cycle():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        if (a, b) not in ALLOWED:
            graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loop = path + [node]
                return loop[loop.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [node])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, f"package-level import cycle: {' -> '.join(cycle)}"


SEARCH_LAYERS = (
    ("base", "baselines", "tables"),
    ("confirm",),  # the searches' last step: training their candidates
    ("evolution", "mnasnet"),
    ("fbnet",),
    ("__init__", "cli"),  # the one entry, search(cfg), and `hwnas search`
)
SEARCH_LAYER = {part: i for i, parts in enumerate(SEARCH_LAYERS) for part in parts}


def search_part(module: str) -> str:
    """The part of hwnas.search a module belongs to: its strategy package or shared module."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def search_edges() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) inside hwnas.search → the imports behind it."""
    mods = modules()
    out: dict[tuple[str, str], list[str]] = {}
    for name, path in mods.items():
        if unit(name) != "search":
            continue
        for target in imports(name, path, set(mods)):
            if unit(target) == "search" and search_part(name) != search_part(target):
                pair = (search_part(name), search_part(target))
                out.setdefault(pair, []).append(f"{name} -> {target}")
    return out


def test_search_is_one_package_per_strategy_pointing_one_way():
    parts = {search_part(m) for m in modules() if unit(m) == "search"}
    assert parts == set(SEARCH_LAYER), f"place these in SEARCH_LAYERS: {parts ^ set(SEARCH_LAYER)}"
    edges = search_edges()
    wrong = [
        ", ".join(why) for (a, b), why in sorted(edges.items()) if SEARCH_LAYER[b] > SEARCH_LAYER[a]
    ]
    assert not wrong, "hwnas.search imports up its layers:\n" + "\n".join(wrong)
    same = {(a, b) for a, b in edges if SEARCH_LAYER[a] == SEARCH_LAYER[b]}
    loops = [f"{a} <-> {b}" for a, b in same if (b, a) in same]
    assert not loops, f"strategies importing each other: {loops}"
    assert ("mnasnet", "evolution") not in edges and ("evolution", "mnasnet") not in edges
    assert ("cli", "__init__") in edges  # the CLI runs every strategy through the one entry


def test_test_doubles_are_imported_by_no_product_module():
    users = [why for (a, b), why in edges().items() if b == "testing"]
    assert not users, f"hwnas.testing is for tests and demos only: {users}"


def test_the_scan_sees_lazy_and_relative_imports():
    """The scanner itself: a function-level import and ``from . import x`` are found."""
    mods = modules()
    found = imports("hwnas.device_profiler.runner", mods["hwnas.device_profiler.runner"], set(mods))
    assert {
        "hwnas.latency",
        "hwnas.progress",
        "hwnas.convert",
        "hwnas.device_profiler.backends",
    } <= found
    found = imports(
        "hwnas.device_profiler.blockmodels", mods["hwnas.device_profiler.blockmodels"], set(mods)
    )
    assert "hwnas.convert" in found  # `from hwnas import convert`
