"""Timing statistics shared by the app's stage timer (nsl.edge.timing) and the benchmarks (nsl.bench)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def percentiles(values: Iterable[float], qs: Sequence[float] = (50, 90)) -> list[float]:
    """The ``qs`` percentiles of ``values`` (linear interpolation); NaN for each when there are none."""
    values = np.asarray(list(values), dtype=np.float64)
    if values.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(values, qs)]


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None
