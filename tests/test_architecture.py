"""The shape of `appliance/`, checked from its source: no import cycle between modules, at most
`MAX_UPWARD` package edges that point up the layer order, no module over `MAX_LINES` lines.

The graph counts every import of an `appliance` module wherever it is written: at module level,
inside a function (a "lazy" import) or under `if TYPE_CHECKING:`. A lazy import hides a
dependency from the interpreter, not from the design, so it counts like any other.

Run `python tests/test_architecture.py` to print the package graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "appliance"

# The layers, lowest first: a package may import the packages listed before it. The order is the
# direction of knowledge: domain services know nothing of HTTP, HTTP controllers call services.
LAYERS = [
    "appliance",  # the package root: __version__
    "errors",  # the domain's refusals and the one error body; imported by every layer
    "logs",  # structured logging, below everything that logs
    "isolation",  # child-process runner (document reader, text-to-speech)
    "config",  # the settings model: plain data read from appliance.toml
    "storage",  # encrypted databases, object store, key files
    "security",  # API keys, audit log, secrets: rows in storage
    "backup",  # snapshots and the PITR log of the databases (handed its targets by its callers)
    "workspaces",  # tenants and environments: rows in the control database
    "runtime",  # the handles every service is given: databases, keyring, settings
    "release",  # signed release bundles and the upgrade: verify, snapshot, swap, roll back
    "webhooks",  # the outbox domain services emit events into, and its delivery worker
    "courses",  # course rows, content validation, the demo course
    "learners",  # identities, trackings, progress: they refer to courses
    "xapi",  # xAPI statements from learner events, their outbox and LRS delivery worker
    "ai",  # generation, translation, narration: they write courses
    "images",  # illustrations (library, model keywords, image engines) and the upload rule for images
    "documents",  # uploaded documents and courses generated from them with the AI
    "server",  # HTTP machinery: request context, middleware, inputs, metrics, the app assembly
    "embeds",  # embed sessions, tokens and origins, and the embed pages' controllers
    "scorm",  # SCORM packages (they play through the embed player) and their runtime's controllers
    "lti",  # the LTI 1.3 tool: launches into the embed player, deep linking, grade passback, its routes
    "headless",  # the partner API's controllers: they mint embed sessions and export SCORM packages
    "admin",  # the operator's web console: its accounts and sessions, and pages over every service
    "cli",  # the operator's commands: top, they may use everything
]
# `python -m appliance` is the command line
ALIASES = {"__main__": "cli"}
MAX_UPWARD = 7  # the 7th: server -> lti, the app assembly registering a route package (like embeds, scorm, headless, admin)
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    return ALIASES.get(name, name)


def _sources() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The appliance modules one import statement names (`from a import b` names `a.b` when b is
    a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "appliance"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against this module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    if source.split(".")[0] != "appliance":
        return []
    found = []
    for alias in node.names:
        candidate = f"{source}.{alias.name}"
        found.append(candidate if candidate in modules else source)
    return found


def imports_of(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The appliance modules one module's source imports, wherever the import is written."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        for target in _imported(node, module, is_package, modules):
            while target not in modules and "." in target:  # `import appliance.x.Name` style
                target = target.rsplit(".", 1)[0]
            if target != module:
                found.add(target)
    return found


def module_graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {
        module: imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py", modules)
        for module, path in sources.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def package_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(package, package) -> the module imports behind that edge."""
    edges: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for source, targets in graph.items():
        for target in targets:
            a, b = package_of(source), package_of(target)
            if a != b:
                edges[(a, b)].append((source, target))
    return {k: sorted(v) for k, v in sorted(edges.items())}


def upward_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    return {(a, b): why for (a, b), why in package_edges(graph).items() if rank[a] < rank[b]}


def _describe(edges: dict[tuple[str, str], list[tuple[str, str]]]) -> str:
    return "\n".join(
        f"  {a} -> {b}: " + ", ".join(f"{s} imports {t}" for s, t in why) for (a, b), why in edges.items()
    )


# -- tests ------------------------------------------------------------------------------------------
def test_every_package_has_a_layer() -> None:
    unknown = sorted({package_of(m) for m in module_graph()} - set(LAYERS))
    assert not unknown, f"packages missing from LAYERS in tests/test_architecture.py: {unknown}"


def test_no_import_cycle() -> None:
    found = cycles(module_graph())
    assert not found, "import cycles between modules:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_few_upward_package_edges() -> None:
    up = upward_edges(module_graph())
    print(f"{len(up)} upward package edges (at most {MAX_UPWARD}):\n{_describe(up)}")
    assert len(up) <= MAX_UPWARD, (
        f"{len(up)} package edges point up the layer order (at most {MAX_UPWARD}):\n{_describe(up)}"
    )


def test_modules_are_short() -> None:
    long = {
        module: n
        for module, path in _sources().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(f"{m} ({n})" for m, n in sorted(long.items()))


def test_the_graph_sees_every_kind_of_import() -> None:
    """The checks above are only as good as the graph: module-level, lazy, relative, package and
    TYPE_CHECKING imports all count."""
    modules = {"appliance", "appliance.a", "appliance.a.x", "appliance.a.y", "appliance.b", "appliance.c",
               "appliance.d", "appliance.e", "appliance.f"}
    source = """
from typing import TYPE_CHECKING
import json
import appliance.b
from appliance import c
from . import y
from .y import Thing
if TYPE_CHECKING:
    from appliance.d import Type
def lazy():
    from appliance.e import helper
class K:
    def m(self):
        import appliance.f.deeper
"""
    assert imports_of(source, "appliance.a.x", False, modules) == {
        "appliance.b", "appliance.c", "appliance.a.y", "appliance.d", "appliance.e", "appliance.f",
    }
    assert imports_of("from .x import z", "appliance.a", True, modules) == {"appliance.a.x"}
    assert package_of("appliance.headless.trackings") == "headless" and package_of("appliance.__main__") == "cli"


if __name__ == "__main__":
    graph = module_graph()
    for (a, b), why in package_edges(graph).items():
        rank = {name: i for i, name in enumerate(LAYERS)}
        mark = "UP" if a in rank and b in rank and rank[a] < rank[b] else "  "
        print(f"{mark} {a:12} -> {b:12} {len(why)}")
    print("cycles:", cycles(graph))
