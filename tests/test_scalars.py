"""liebian.scalars: checked numbers from frame cells."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from liebian.scalars import as_float, as_int


def test_numbers_of_every_kind_a_frame_holds_convert() -> None:
    assert as_int(np.int64(7)) == 7 and type(as_int(np.int64(7))) is int
    assert as_int(np.float64(2.9)) == 2  # truncates, as int() does
    assert as_int(Decimal("12")) == 12
    assert as_int(np.bool_(True)) == 1
    assert as_float(np.int32(3)) == 3.0 and type(as_float(np.int32(3))) is float
    assert as_float(Decimal("1.5")) == 1.5
    row = next(pd.DataFrame({"n": [5], "x": [0.25]}).itertuples())
    assert (as_int(row.n), as_float(row.x)) == (5, 0.25)


@pytest.mark.parametrize("cell", [None, pd.NA, pd.NaT, "5", b"5", (1,)])
def test_a_cell_that_is_no_number_fails_loudly(cell: object) -> None:
    with pytest.raises(TypeError):
        as_int(cell)
    with pytest.raises(TypeError):
        as_float(cell)


def test_nan_is_no_integer() -> None:
    with pytest.raises(ValueError):
        as_int(float("nan"))
    assert np.isnan(as_float(np.float64("nan")))
