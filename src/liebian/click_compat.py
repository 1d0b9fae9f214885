"""The click that typer builds commands with. Recent typer versions carry their own copy of click
(`typer._click`), whose classes are distinct from the click package's; older ones (the project allows
typer>=0.12) use the click package. Commands liebian builds or walks must be of typer's kind."""

from __future__ import annotations

try:
    from typer import _click as click
except ImportError:  # typer before it vendored click
    import click  # type: ignore[no-redef]  # the same API under the package's own name

__all__ = ["click"]
