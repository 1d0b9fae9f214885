"""Heavy libraries imported on first use.

scikit-learn, SciPy, statsmodels, pandas, Ibis, DuckDB, PyArrow, Alembic, Pillow … take seconds to
import together, and the server's workers and every `liebian` command would pay for them at start
although most requests and commands never touch them (uvicorn kills a worker that is not up in
time). A module that needs one writes, instead of `import pandas as pd`:

    pd = lazy_import("pandas")  # deferred: start-up time (liebian/lazy.py)

and `pd.DataFrame` imports pandas the first time it is used. Annotations (`-> pd.DataFrame`) are
not evaluated under `from __future__ import annotations` and import nothing.

Why not `importlib.util.LazyLoader`: on Python 3.11 its module becomes a plain, half-filled module
while it executes, so a second thread (the scheduler, a flusher, the server's thread pool) can
see attributes missing; and it cannot defer a submodule (`pyarrow.parquet`) without executing the
parent. `importlib.import_module` holds the import lock per module: a second thread waits for the
first to finish.
"""

from __future__ import annotations

import importlib
import types


class _LazyModule(types.ModuleType):
    """Stands for a module; the first attribute looked up imports it (later ones hit `__dict__`)."""

    def __getattr__(self, attr: str):
        value = getattr(importlib.import_module(self.__name__), attr)
        if not (attr.startswith("__") and attr.endswith("__")):
            setattr(self, attr, value)  # a module's functions and classes do not change: keep them
        return value

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy_import(name: str) -> types.ModuleType:
    """The module `name`, imported when one of its attributes is first used."""
    return _LazyModule(name)
