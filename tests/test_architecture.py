"""The structure the project promises (CONTRIBUTING.md): no import cycles, no domain importing the web
layer, no registry filled by importing a module, no oversized files or functions.

The import graph counts every import a module can run: at its top and inside functions. Imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "liebian"
# Modules allowed to import the web layer: the CLI root assembles every domain's commands.
WEB_IMPORTERS = {"liebian.cli"}
EXEMPT_FROM_SIZE = ("liebian.db.migrations", "liebian.demo.generator")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80
# A longer function says why in its docstring with this phrase.
LONG_FUNCTION_REASON = "longer than 80 lines because"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _resolve_from(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve_from(name, node, path.name == "__init__.py")
                deps.add(target)
                deps.update(f"{target}.{alias.name}" for alias in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module are the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = strongly_connected(import_graph())
    assert not cycles, "import cycles (module-level or inside functions):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_no_domain_imports_the_web_layer():
    offenders = sorted(
        f"{module} -> {dep}"
        for module, deps in import_graph().items()
        for dep in deps
        if dep.startswith("liebian.web")
        and not module.startswith("liebian.web")
        and module not in WEB_IMPORTERS
    )
    assert not offenders, "domains must not import liebian.web:\n" + "\n".join(offenders)


def test_no_file_over_800_lines():
    over = [
        f"{path.relative_to(SRC)}: {n} lines"
        for name, path in _modules().items()
        if not name.startswith(EXEMPT_FROM_SIZE)
        and (n := path.read_text(encoding="utf-8").count("\n")) > MAX_FILE_LINES
    ]
    assert not over, "files over 800 lines:\n" + "\n".join(over)


def test_no_long_function_without_a_reason():
    long = []
    for name, path in _modules().items():
        if name.startswith(EXEMPT_FROM_SIZE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = node.end_lineno - node.lineno + 1
            doc = (ast.get_docstring(node) or "").lower()
            if length > MAX_FUNCTION_LINES and LONG_FUNCTION_REASON not in " ".join(doc.split()):
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines without '{LONG_FUNCTION_REASON} …' in their "
        "docstring:\n" + "\n".join(long)
    )


# Run in a fresh interpreter: snapshot every module-level list, dict and set right after its module
# ran, import every module of the package, and report the containers that changed afterwards — filled
# by another module while it was imported.
_PROBE = r"""
import importlib, json, pkgutil, sys
import importlib.abc

snapshots = {}

def shape(value):
    if isinstance(value, dict):
        return sorted(map(repr, value.keys()))
    return sorted(map(repr, value)) if isinstance(value, set | frozenset) else [id(v) for v in value]

class Snapshotter(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if not name.startswith("liebian"):
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                loader = spec.loader
                original = loader.exec_module
                def exec_module(module, original=original):
                    original(module)
                    for key, value in vars(module).items():
                        if isinstance(value, list | dict | set) and not key.startswith("__"):
                            snapshots[(module.__name__, key)] = (id(value), shape(value))
                loader.exec_module = exec_module
                return spec
        return None

sys.meta_path.insert(0, Snapshotter())
import liebian
for info in pkgutil.walk_packages(liebian.__path__, "liebian."):
    if info.name.startswith("liebian.db.migrations"):
        continue  # Alembic revision scripts run only inside Alembic
    importlib.import_module(info.name)
changed = []
for (module_name, key), (ident, before) in snapshots.items():
    value = getattr(sys.modules[module_name], key, None)
    if value is not None and id(value) == ident and shape(value) != before:
        changed.append(f"{module_name}.{key}")
print(json.dumps(sorted(changed)))
"""


def test_no_registry_is_filled_by_importing_another_module():
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=SRC.parent, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    changed = json.loads(result.stdout.strip().splitlines()[-1])
    assert not changed, (
        "module-level containers changed by importing other modules (declare the link in "
        "liebian/bootstrap.py instead):\n" + "\n".join(changed)
    )


@pytest.mark.parametrize("probe", ["mutating", "clean"])
def test_the_registry_probe_sees_a_mutation(tmp_path, probe):
    """The probe itself can fail: a package whose second module fills the first one's list."""
    pkg = tmp_path / "liebian"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("HOOKS = []\n")
    body = "from liebian import a\na.HOOKS.append(print)\n" if probe == "mutating" else "X = [1]\n"
    (pkg / "b.py").write_text(body)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    changed = json.loads(result.stdout.strip().splitlines()[-1])
    assert changed == (["liebian.a.HOOKS"] if probe == "mutating" else [])
