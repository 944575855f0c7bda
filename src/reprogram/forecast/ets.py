"""AutoETS (statsforecast) as a forecaster of lookback windows ``[B, 1, L]`` → ``[B, H]``.

Exponential smoothing is a *local* model: it is fitted afresh on each window's own history
(error, trend and season forms chosen by AICc, as statsforecast's ``AutoETS`` does), so it
learns nothing from the training split and has nothing to select on validation. It is the
classical reference a forecaster reaches for before any network.

Each window's forecast is remembered on disk (:mod:`.ets_store`), at least 720 steps of it, so
the same window met again (another horizon, another run over the same split) is read back
instead of refitted; ``REPROGRAM_ETS_CACHE=0`` switches that off.

statsforecast is optional here. It declares ``pandas<3`` (this library runs on pandas 3), so it
is installed without its declared dependencies; ``make install`` does that with pinned
versions (see :data:`INSTALL`). Its model code does not touch pandas.
"""

from __future__ import annotations

import functools
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ReprogramError
from .ets_store import STORE_STEPS, ForecastStore, store_enabled, store_path, window_key

#: Stores opened in this process, by file (a connection is not kept on the module, which
#: must stay copyable).
_STORES: dict[Path, ForecastStore] = {}

#: How to install statsforecast beside pandas 3 (its model code runs there; only its
#: declared ``pandas<3`` conflicts).
INSTALL = (
    "pip install --no-deps statsforecast==2.1.1 coreforecast==0.0.20 utilsforecast==0.2.17 "
    "fugue==0.9.7 triad==1.0.4 adagio==0.2.6 fs==2.4.16 pyarrow==26.0.1 six==1.17.0"
)


@functools.cache
def statsforecast_version() -> str | None:
    """The installed statsforecast's version, or ``None`` when it has no package metadata
    (imported from a source tree: then no forecast store is kept)."""
    try:
        return metadata.version("statsforecast")
    except metadata.PackageNotFoundError:
        return None


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
    raises the error of :func:`auto_ets_class` (before any window is scored). Forecasts of
    windows met before are read from the user's :class:`~.ets_store.ForecastStore`
    (:attr:`cached` counts them); failed fits are not remembered. A store that cannot be
    opened (no cache directory, a damaged file), read or written is reported once and left
    aside: the windows are fitted instead.
    """

    def __init__(self, horizon: int, season: int) -> None:
        super().__init__()
        if horizon < 1 or season < 1:
            raise ValueError(f"horizon ({horizon}) and season ({season}) must be at least 1")
        self.horizon, self.season = horizon, season
        self.model_class = auto_ets_class()
        self.settings = (
            f"{self.model_class.__module__}.{self.model_class.__name__}:season={season}"
        )
        self.fallbacks = 0
        self.windows = 0
        self.cached = 0
        self.store_off = False

    def _fit(self, y: np.ndarray, steps: int) -> np.ndarray | None:
        """Forecast float64 ``[steps]`` of one window float64 ``[L]``, or ``None`` if the fit
        failed."""
        model = self.model_class(season_length=self.season)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out = np.asarray(model.forecast(y=y, h=steps)["mean"], dtype=np.float64)
        except Exception:  # noqa: BLE001 - any failed fit falls back, counted
            return None
        return out if out.shape == (steps,) and np.isfinite(out).all() else None

    def store(self) -> ForecastStore | None:
        """The user's forecast store for this statsforecast, or ``None`` when switched off,
        left aside, or statsforecast has no version to key it by."""
        if self.store_off or not store_enabled():  # a bad value of the switch raises here
            return None
        version = statsforecast_version()
        if version is None:
            return None
        try:
            path = store_path(version)
            if path not in _STORES:
                _STORES[path] = ForecastStore(path)
        except ReprogramError as exc:  # no cache directory, or a damaged store
            self.give_up_store(exc)
            return None
        return _STORES[path]

    def give_up_store(self, exc: ReprogramError) -> None:
        """Say once why the forecast store is left aside, and fit every window from here."""
        self.store_off = True
        warnings.warn(f"{exc} Fitting every window instead.", RuntimeWarning, stacklevel=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64).numpy()
        self.windows += len(rows)
        out = np.empty((len(rows), self.horizon))
        store = self.store() if len(rows) else None
        keys = [window_key(row, self.settings) for row in rows] if store else []
        found: dict[bytes, np.ndarray] = {}
        if store is not None:
            try:
                found = store.get(keys, self.horizon)
            except ReprogramError as exc:
                self.give_up_store(exc)
                store = None
        # a stored forecast serves every shorter horizon later, so it is fitted long
        steps = max(self.horizon, STORE_STEPS) if store else self.horizon
        fresh: list[tuple[bytes, np.ndarray]] = []
        for i, row in enumerate(rows):
            hit = found.get(keys[i]) if store else None
            if hit is not None:
                self.cached += 1
                out[i] = hit
                continue
            fitted = self._fit(row, steps)
            if fitted is None:
                self.fallbacks += 1
                out[i] = row[-1]
                continue
            out[i] = fitted[: self.horizon]
            if store is not None:
                fresh.append((keys[i], fitted))
        if store is not None:
            try:
                store.put(fresh)
            except ReprogramError as exc:
                self.give_up_store(exc)
        return torch.from_numpy(out).to(x.device, torch.float32)
