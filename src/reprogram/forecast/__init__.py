"""Building blocks of forecasters: instance normalisation, patching, and the field's models.

Every forecaster here reads lookback windows ``[B, 1, L]`` (one variable each:
channel-independent, as PatchTST) and answers the next ``H`` values ``[B, H]``. They are
shared by the ``patch-reprogram`` program (Time-LLM) and the forecasting baselines
(``dlinear``, ``patchtst``, ``linear``, ``seasonal-naive``, ``autoets``).
"""

from __future__ import annotations

from .blocks import (
    DLinear,
    InstanceNorm,
    PatchTST,
    RevINLinear,
    SeasonalNaive,
    patch_count,
    patches,
)
from .ets import AutoETSForecaster

__all__ = [
    "AutoETSForecaster",
    "DLinear",
    "InstanceNorm",
    "PatchTST",
    "RevINLinear",
    "SeasonalNaive",
    "patch_count",
    "patches",
]
