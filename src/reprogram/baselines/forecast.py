"""Forecasting peers under the same splits and selection: ``seasonal-naive``, ``autoets``,
``dlinear``, ``linear`` (RLinear) and ``patchtst``.

They read lookback windows ``[B, 1, L]`` of a ``forecast:`` target and answer ``[B, H]``.
``seasonal-naive`` has nothing to fit and ``autoets`` (statsforecast's AutoETS) is fitted on
each window's own history (their season comes from the dates: 24 for hourly data, 52 weekly,
7 daily; ``season=N`` overrides); the others are trained by the same loop as
``fit`` (MSE, Adam with the learning rate halved every epoch as their authors train them,
validation MSE selects the epoch, the test split is scored once).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import FitResult
from ..errors import ReprogramError
from ..evaluate import score
from ..forecast import DLinear, PatchTST, RevINLinear, SeasonalNaive
from ..forecast.ets import AutoETSForecaster
from ..tasks import REGRESSION
from . import BASELINES
from .base import Baseline, BaselineRun, BuildContext, GradientBaseline, fitted_once, test_once
from .models import FromScratch

#: The forecasters' published schedule: the learning rate halves every epoch.
HALVING: dict[str, Any] = {"decay": 0.5}


def _forecast_shape(ctx: BuildContext, method: str) -> tuple[int, int]:
    """``(lookback, horizon)`` of a forecasting target; refuse anything else."""
    if ctx.task != "regression" or len(ctx.input_shape) != 2 or ctx.input_shape[0] != 1:
        raise ReprogramError(
            f"baseline {method!r} forecasts series: it needs a forecast: target (lookback "
            f"windows [1, L]); these inputs have shape {list(ctx.input_shape)}."
        )
    return int(ctx.input_shape[1]), int(ctx.num_classes)


class Forecaster(FromScratch):
    """A forecasting module as a baseline model: every tensor saved, no source."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecasts ``[B, H]`` of windows ``[B, 1, L]``."""
        out: torch.Tensor = self.module(x)
        return out


@dataclass
class NaiveOptions:
    season: int = field(
        default=0, metadata={"help": "season length in steps (0: from the target's dates)"}
    )

    def __post_init__(self) -> None:
        if self.season < 0:
            raise ValueError(f"season must be 0 (from the dates) or positive, got {self.season}")


class LocalForecasterBaseline(Baseline):
    """A forecaster with nothing to learn from the training split (the last season, or a
    model fitted on each window's own history): validation is scored for the record, the test
    split once. Subclasses say how to build it from the lookback, horizon and season."""

    needs_source = False
    modalities = ("forecast",)
    #: the method's registry name, for errors
    name = ""

    def forecaster(self, lookback: int, horizon: int, season: int) -> nn.Module:
        raise NotImplementedError

    def build(self, ctx: BuildContext) -> nn.Module:
        lookback, horizon = _forecast_shape(ctx, self.name)
        if self.options.season > lookback:
            raise ReprogramError(
                f"baseline {self.name!r}: season={self.options.season} is longer than the "
                f"lookback {lookback}, so no value one season earlier is in the window; give a "
                "season of at most the lookback (or leave it out: the dates give it)."
            )
        return Forecaster(self.forecaster(lookback, horizon, self.options.season or 1))

    def train(self, run: BaselineRun) -> FitResult:
        facts = run.splits.forecast or {}
        lookback = int(run.splits.input_shape[1])
        season = min(self.options.season or int(facts.get("season", 1)), lookback)
        model = run.model
        assert isinstance(model, Forecaster)
        model.module = self.forecaster(lookback, run.splits.num_classes, season)
        artifact = dict(run.artifact_config)
        artifact["baseline"] = {**artifact["baseline"], "options": {"season": season}}
        start = time.perf_counter()
        batch = run.config.eval_batch_size
        progress = run.config.progress and sys.stderr.isatty()
        val = REGRESSION.summary(score(model, run.splits.val.x, run.splits.val.y, batch,
                                       "val" if progress else None, task=REGRESSION))
        return fitted_once(
            run,
            model,
            val=val,
            test=test_once(run, model, progress),
            seconds=time.perf_counter() - start,
            selection=f"nothing learnt from the training split (season {season}); test once",
            artifact=artifact,
            **self.facts(model.module),
        )

    def facts(self, module: nn.Module) -> dict[str, Any]:
        """Method-specific entries of metrics.json."""
        return {}


class SeasonalNaiveBaseline(LocalForecasterBaseline):
    name = "seasonal-naive"

    def forecaster(self, lookback: int, horizon: int, season: int) -> nn.Module:
        return SeasonalNaive(lookback, horizon, season)


@BASELINES.register(
    "seasonal-naive",
    config=NaiveOptions,
    help="forecast: the value one season earlier (no parameters)",
)
def build_naive(options: NaiveOptions) -> SeasonalNaiveBaseline:
    return SeasonalNaiveBaseline(options)


class AutoETSBaseline(LocalForecasterBaseline):
    """statsforecast's AutoETS fitted on each window (val and test alike): slow, about 0.2 s a
    window on one core, and nothing is learnt from the training split. Windows met before (at
    any horizon up to 720) are read from the user's forecast store instead (``ets_cached``)."""

    name = "autoets"

    def forecaster(self, lookback: int, horizon: int, season: int) -> nn.Module:
        return AutoETSForecaster(horizon, season)  # refuses here when statsforecast is missing

    def facts(self, module: nn.Module) -> dict[str, Any]:
        assert isinstance(module, AutoETSForecaster)
        return {"ets_windows": module.windows, "ets_fallbacks": module.fallbacks,
                "ets_cached": module.cached}


@BASELINES.register(
    "autoets",
    config=NaiveOptions,
    help="forecast: statsforecast's AutoETS fitted on each window (season from the dates)",
)
def build_autoets(options: NaiveOptions) -> AutoETSBaseline:
    return AutoETSBaseline(options)


class TrainedForecaster(GradientBaseline):
    """A forecaster trained by the ``fit`` loop, with its authors' halving schedule."""

    needs_source = False
    optimizer_defaults = HALVING
    modalities = ("forecast",)


@dataclass
class DLinearOptions:
    kernel: int = field(default=25, metadata={"help": "moving-average window of the trend"})

    def __post_init__(self) -> None:
        if self.kernel < 1:
            raise ValueError(f"kernel must be at least 1, got {self.kernel}")


class DLinearBaseline(TrainedForecaster):
    default_lr = 5e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        lookback, horizon = _forecast_shape(ctx, "dlinear")
        return Forecaster(DLinear(lookback, horizon, self.options.kernel))


@BASELINES.register(
    "dlinear", config=DLinearOptions, help="forecast: DLinear (trend + remainder, two linears)"
)
def build_dlinear(options: DLinearOptions) -> DLinearBaseline:
    return DLinearBaseline(options)


class LinearBaseline(TrainedForecaster):
    default_lr = 5e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        lookback, horizon = _forecast_shape(ctx, "linear")
        return Forecaster(RevINLinear(lookback, horizon))


@BASELINES.register(
    "linear", help="forecast: one linear layer between instance normalisation (RLinear)"
)
def build_linear(options: None) -> LinearBaseline:
    return LinearBaseline(options)


@dataclass
class PatchTSTOptions:
    patch: int = field(default=16, metadata={"help": "patch length"})
    stride: int = field(default=8, metadata={"help": "patch stride"})
    width: int = field(default=16, metadata={"help": "model width (ETTh1: 16)"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    layers: int = field(default=3, metadata={"help": "encoder blocks"})
    ff: int = field(default=128, metadata={"help": "feed-forward width"})
    dropout: float = field(default=0.3, metadata={"help": "dropout"})

    def __post_init__(self) -> None:
        for name in ("patch", "stride", "width", "heads", "layers", "ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class PatchTSTBaseline(TrainedForecaster):
    default_lr = 1e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        lookback, horizon = _forecast_shape(ctx, "patchtst")
        o = self.options
        try:
            module = PatchTST(
                lookback, horizon, o.patch, o.stride, o.width, o.heads, o.layers, o.ff, o.dropout
            )
        except ValueError as exc:
            raise ReprogramError(f"baseline 'patchtst': {exc}") from None
        return Forecaster(module)


@BASELINES.register(
    "patchtst",
    config=PatchTSTOptions,
    help="forecast: PatchTST (patches, transformer encoder, flat head; ETTh1 settings)",
)
def build_patchtst(options: PatchTSTOptions) -> PatchTSTBaseline:
    return PatchTSTBaseline(options)
