"""AutoETS (statsforecast) as a forecaster of lookback windows ``[B, 1, L]`` → ``[B, H]``.

Exponential smoothing is a *local* model: it is fitted afresh on each window's own history
(error, trend and season forms chosen by AICc, as statsforecast's ``AutoETS`` does), so it
learns nothing from the training split and has nothing to select on validation. It is the
classical reference a forecaster reaches for before any network.

statsforecast is optional here. It declares ``pandas<3`` (this library runs on pandas 3), so it
is installed without its declared dependencies; ``make install`` does that with pinned
versions (see :data:`INSTALL`). Its model code does not touch pandas.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ReprogramError

#: How to install statsforecast beside pandas 3 (its model code runs there; only its
#: declared ``pandas<3`` conflicts).
INSTALL = (
    "pip install --no-deps statsforecast==2.1.1 coreforecast==0.0.20 utilsforecast==0.2.17 "
    "fugue==0.9.7 triad==1.0.4 adagio==0.2.6 fs==2.4.16 pyarrow==26.0.1 six==1.17.0"
)


def auto_ets_class() -> Any:
    """statsforecast's ``AutoETS`` class, or a clear error saying how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from statsforecast.models import AutoETS
    except ImportError as exc:
        raise ReprogramError(
            f"baseline 'autoets' needs statsforecast, which could not be imported ({exc}). "
            f"`make install` installs it; by hand: {INSTALL}"
        ) from None
    return AutoETS


class AutoETSForecaster(nn.Module):
    """AutoETS fitted on each window: ``forward`` maps ``x`` ``[B, 1, L]`` to ``[B, H]``.

    Args:
        horizon: ``H``, steps forecast.
        season: season length in steps (1: no seasonal form is tried). statsforecast drops the
            seasonal forms itself when a window holds too few seasons.

    A window whose fit fails (statsforecast raises, or answers non-finite values) is forecast
    by its last value instead; :attr:`fallbacks` counts them. Building one without statsforecast
    raises the error of :func:`auto_ets_class` (before any window is scored).
    """

    def __init__(self, horizon: int, season: int) -> None:
        super().__init__()
        if horizon < 1 or season < 1:
            raise ValueError(f"horizon ({horizon}) and season ({season}) must be at least 1")
        self.horizon, self.season = horizon, season
        self.model_class = auto_ets_class()
        self.fallbacks = 0
        self.windows = 0

    def forecast_one(self, y: np.ndarray) -> np.ndarray:
        """Forecast float64 ``[H]`` of one window float64 ``[L]``."""
        model = self.model_class(season_length=self.season)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out = np.asarray(model.forecast(y=y, h=self.horizon)["mean"], dtype=np.float64)
        except Exception:  # noqa: BLE001 - any failed fit falls back, counted
            out = np.empty(0)
        if out.shape != (self.horizon,) or not np.isfinite(out).all():
            self.fallbacks += 1
            out = np.full(self.horizon, y[-1])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64).numpy()
        self.windows += len(rows)
        out = np.stack([self.forecast_one(row) for row in rows]) if len(rows) else np.empty(
            (0, self.horizon)
        )
        return torch.from_numpy(out).to(x.device, torch.float32)
