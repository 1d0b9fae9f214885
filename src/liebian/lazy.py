"""Heavy libraries imported on first use.

scikit-learn, SciPy, statsmodels, pandas, Ibis, DuckDB, PyArrow, Alembic, Pillow, httpx … take
seconds to import together; the server's workers and every `liebian` command would pay for them at
start although most requests and commands never touch them (and uvicorn kills a worker that does
not answer its start-up ping in time). A module that needs one writes, instead of
`import pandas as pd`:

    if TYPE_CHECKING:
        import pandas as pd
    else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
        pd = lazy_import("pandas")

The type checker sees the module; at run time the first attribute looked up (`pd.DataFrame`)
imports pandas and puts the module itself in place of the stand-in in the importing module's
namespace, so later uses cost what a plain import costs and a test that patches the library patches
what the module uses. Annotations (`-> pd.DataFrame`) are not evaluated under
`from __future__ import annotations` and import nothing.

Why not `importlib.util.LazyLoader`: on Python 3.11 its module turns into a plain, half-filled
module while it executes, so a second thread (the scheduler, a flusher, the server's thread pool)
can find attributes missing; and it cannot defer a submodule (`pyarrow.parquet`) without executing
the parent. `importlib.import_module` holds the import lock per module: a second thread waits for
the first to finish.

`collector_paused()` pauses Python's cyclic garbage collector while a block imports modules: an
import makes thousands of long-lived objects (classes, functions, schemas) that the collector would
traverse again and again as they are made and find nothing to free — some 10–15 % of a command's
start-up CPU (docs/benchmarks.md, "Start-up"). web/asgi.py does the same for the app's import.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_pause_lock = threading.Lock()
_pauses = 0  # blocks inside collector_paused() now, in any thread (the collector is per process)
_resume = False  # whether the outermost pause found the collector enabled


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector paused; the outermost block, in whichever
    thread ends last, resumes it (if it was running). Nothing is frozen (gc.freeze): a server's
    request objects made meanwhile stay collectable. For blocks that import, not for data work."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


class _LazyModule(types.ModuleType):
    """Stands for the module `__name__` in the namespace of the module that created it."""

    def __init__(self, name: str, namespace: dict) -> None:
        super().__init__(name)
        self.__namespace = namespace

    def __load(self) -> types.ModuleType:
        with collector_paused():  # a heavy library's import (start-up time)
            module = importlib.import_module(self.__name__)
        namespace, self.__namespace = self.__namespace, {}
        for key, value in list(namespace.items()):
            if value is self:
                namespace[key] = module
        return module

    def __getattr__(self, attr: str):
        # the first attribute too may import (`ibis.duckdb` loads Ibis's DuckDB backend)
        with collector_paused():
            return getattr(self.__load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self.__load())

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy_import(name: str) -> types.ModuleType:
    """The module `name`, imported when one of its attributes is first looked up."""
    return _LazyModule(name, sys._getframe(1).f_globals)


# Packages whose __init__ only re-exports its submodules' names, imported instead as a package whose
# names import their submodule on first use (`defer_package`).
_deferred: set[str] = set()


def defer_package(name: str) -> None:
    """Have the package `name`, when it is first imported, import each submodule only when one of
    its names is looked up, instead of all of them in its __init__.

    For Ibis's `ibis.backends.sql.compilers`: its __init__ imports the SQL compilers of all ~20
    dialects (~0.15 s of CPU) where an analysis uses DuckDB's (or Spark's). The package's __init__
    is read, not run: when it holds anything but a docstring, `__all__` and `from <package>.<sub>
    import <names>` lines, it is run as usual. Nothing happens once the package is imported."""
    with _pause_lock:
        if name in _deferred or name in sys.modules:
            return
        _deferred.add(name)
        sys.meta_path.insert(0, _DeferredPackageFinder(name))


class _DeferredPackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once: the other finders find the real package
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.origin is None or spec.submodule_search_locations is None:
            return spec
        names = _reexports(fullname, Path(spec.origin))
        if names is not None:
            spec.loader = _DeferredPackageLoader(names)
        return spec


class _DeferredPackageLoader(importlib.abc.Loader):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names  # a re-exported name -> its submodule

    def create_module(self, spec):
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        package, names = module.__name__, self.names

        def __getattr__(attr: str):
            sub = names.get(attr, attr)
            try:
                submodule = importlib.import_module(f"{package}.{sub}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{sub}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {attr!r}") from None
            value = submodule if sub == attr else getattr(submodule, attr)
            setattr(module, attr, value)
            return value

        module.__all__ = list(names)  # type: ignore[attr-defined]  # a module built here
        module.__getattr__ = __getattr__  # type: ignore[method-assign]


def _reexports(package: str, init: Path) -> dict[str, str] | None:
    """{name: submodule} of an __init__ that only re-exports its submodules' names; None otherwise."""
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "__future__":
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            continue
        if not (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith(package + ".")
            and (node.module or "").count(".") == package.count(".") + 1
        ):
            return None
        for alias in node.names:
            if alias.asname not in (None, alias.name) or alias.name == "*":
                return None
            names[alias.name] = (node.module or "").rsplit(".", 1)[1]
    return names
