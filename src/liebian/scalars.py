"""Python numbers from the cells of a frame, checked.

pandas' stubs type a cell, a row attribute of `itertuples()` and a group key as "any scalar" (or
`Hashable`), since a frame's columns carry no types. Code that reads a numeric column converts
through these instead of `int(...)`, so the type checker sees the number and a cell of the wrong kind
still fails loudly.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeGuard

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")


_Numbers = tuple[
    type[int], type[float], type[Decimal], type["np.integer[Any]"], type["np.floating[Any]"], type["np.bool_"]
]


@functools.cache
def _numbers() -> _Numbers:
    """The number types a cell may hold (a function: naming NumPy's would import it at start-up)."""
    return (int, float, Decimal, np.integer, np.floating, np.bool_)


def _is_number(
    value: object,
) -> TypeGuard[int | float | Decimal | np.integer[Any] | np.floating[Any] | np.bool_]:
    if isinstance(value, int | float | Decimal):  # first: naming NumPy's types imports NumPy
        return True
    return isinstance(value, _numbers())


def as_int(value: object) -> int:
    """int() of a numeric cell: Python, numpy and Decimal numbers (NaN raises, as int() does)."""
    if _is_number(value):
        return int(value)
    raise TypeError(f"expected a number, got {value!r}")


def as_float(value: object) -> float:
    """float() of a numeric cell: Python, numpy and Decimal numbers."""
    if _is_number(value):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")
