"""Python numbers from the cells of a frame, checked.

pandas' stubs type a cell, a row attribute of `itertuples()` and a group key as "any scalar" (or
`Hashable`), since a frame's columns carry no types. Code that reads a numeric column converts
through these instead of `int(...)`, so the type checker sees the number and a cell of the wrong kind
still fails loudly.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

_NUMBERS = (int, float, Decimal, np.integer, np.floating, np.bool_)


def as_int(value: object) -> int:
    """int() of a numeric cell: Python, numpy and Decimal numbers (NaN raises, as int() does)."""
    if isinstance(value, _NUMBERS):
        return int(value)
    raise TypeError(f"expected a number, got {value!r}")


def as_float(value: object) -> float:
    """float() of a numeric cell: Python, numpy and Decimal numbers."""
    if isinstance(value, _NUMBERS):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")
