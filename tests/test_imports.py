"""The import graph of the installed package, read from the source (ast, nothing imported):
no cycles, no arrow from the core up to the service, the CLI or the task folders, and
function-local imports between project modules only with a one-line reason."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "harness"
#: folders of data and plug-ins that are not modules of the graph (task folders are: they import the API)
NOT_MODULES = ("competitions", "agents", "_mlebench_shim")
#: layers above the core: only they may import each other's modules
TOP = ("harness.cli", "harness.serve", "harness.ui", "harness.cli_ui", "harness.cli_serve")
PLUGINS = ("harness.technique_tasks",)
#: modules whose function-local imports are still being reworked by their owners (the service
#: is rewritten alongside this test); every other module must give a reason for each one
PENDING_LAZY = ("harness.serve",)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    local: bool  # inside a function
    text: str
    comment: bool  # a `#` comment on the line or the one above


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[1:2] and parts[1] in NOT_MODULES:
            continue
        name = ".".join(x.replace("-", "_") for x in parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _edges(modules: dict[str, Path]) -> list[Edge]:
    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges = []
    for mod, path in modules.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        local_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f)}
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" for a in node.names] or [base]
            else:
                continue
            targets = {resolve(n) for n in names if n == "harness" or n.startswith("harness.")}
            # importing a.b.c runs a/__init__ and a/b/__init__ first: those are arrows too
            targets |= {".".join(t.split(".")[:i]) for t in set(targets) for i in range(2, t.count(".") + 1)}
            for target in {t for t in targets if t in modules} - {"", mod} - _ancestors(mod):
                text = lines[node.lineno - 1]
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                edges.append(Edge(mod, target, node.lineno, id(node) in local_nodes, text.strip(),
                                  _reason(text) or (above.startswith("#") and _reason(above))))
    return edges


def _ancestors(mod: str) -> set[str]:
    """The packages a module sits in (already being imported when it runs)."""
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _reason(line: str) -> bool:
    """Whether the line carries a comment that says something (not only `type: ignore` / `noqa`)."""
    if "#" not in line:
        return False
    words = line.split("#", 1)[1].strip()
    return bool(words) and not words.startswith(("type:", "noqa"))


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as a path (first == last), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str]:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        stack.pop()
        return []

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return []


def test_the_walk_sees_the_package() -> None:
    modules = _modules()
    assert {"harness.registry", "harness.orchestrator", "harness.sandbox.local", "harness.serve.app",
            "harness.techniques.sdk", "harness.technique_tasks.imbalance.task"} <= set(modules)
    edges = _edges(modules)
    assert any(e.source == "harness.technique_tasks.imbalance.task" and e.target == "harness.techniques" for e in edges)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for e in _edges(_modules()):
        graph.setdefault(e.source, set()).add(e.target)
    cycle = _cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_a_package_init_is_an_arrow(tmp_path: Path, monkeypatch: Any) -> None:
    """`import p.x` runs p/__init__.py: a cycle through it is a cycle (it broke `harness --help` once)."""
    pkg = tmp_path / "harness"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from harness.sub.b import B\n")
    (pkg / "sub" / "b.py").write_text("from harness.top import T\nB = 1\n")
    (pkg / "top.py").write_text("from harness.sub.a import A\nT = 1\n")
    (pkg / "sub" / "a.py").write_text("A = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    graph: dict[str, set[str]] = {}
    for e in _edges(_modules()):
        graph.setdefault(e.source, set()).add(e.target)
    assert _cycle(graph) == ["harness.sub", "harness.sub.b", "harness.top", "harness.sub"]


def test_a_cycle_is_found() -> None:  # the checker itself
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) == []


def test_no_arrow_runs_back_up() -> None:
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in _edges(_modules())
           if not _within(e.source, TOP + PLUGINS)
           and (_within(e.target, TOP + PLUGINS))]
    assert not bad, "the core imports the service, the CLI or a task folder: " + "; ".join(bad)
    # task folders see only the technique-task API (and the shared models it hands them)
    plugin = [f"{e.source}:{e.line} imports {e.target}" for e in _edges(_modules())
              if _within(e.source, PLUGINS) and not _within(e.target, ("harness.techniques", "harness.spec"))]
    assert not plugin, "a task folder reaches past harness.techniques: " + "; ".join(plugin)


def test_function_local_imports_say_why() -> None:
    silent = [f"{e.source}:{e.line}: {e.text}" for e in _edges(_modules())
              if e.local and not e.comment and not _within(e.source, PENDING_LAZY)]
    assert not silent, ("function-local imports of project modules need a one-line `# reason` (a heavy optional "
                        "dependency), or belong at the top of the module:\n" + "\n".join(silent))
