"""Forecast pictures: a window's history, the forecast and (when known) the truth."""

from __future__ import annotations

from pathlib import Path

import torch

from ..figures import subplots


def save_forecast_png(
    history: torch.Tensor,
    forecast: torch.Tensor,
    truth: torch.Tensor | None,
    path: Path,
    title: str,
    names: list[str] | None = None,
    dates: list[str] | None = None,
) -> None:
    """One panel per window: ``history`` ``[N, L]``, ``forecast`` ``[N, H]`` and ``truth``
    ``[N, H]`` (or None), drawn on one time axis; ``names`` label the panels, and ``dates``
    (the ``H`` forecast steps' timestamps, when known) the axis."""
    n = int(history.shape[0])
    fig, axes = subplots(n, 1, figsize=(9.0, 2.2 * n + 0.6), squeeze=False)
    for i in range(n):
        ax = axes[i][0]
        past = history[i].float().cpu().numpy()
        steps = range(len(past), len(past) + int(forecast.shape[1]))
        ax.plot(range(len(past)), past, color="0.35", lw=1.0, label="history")
        if truth is not None:
            ax.plot(steps, truth[i].float().cpu().numpy(), color="tab:green", lw=1.0,
                    label="truth")
        ax.plot(steps, forecast[i].float().cpu().numpy(), color="tab:red", lw=1.2,
                label="forecast")
        ax.axvline(len(past) - 0.5, color="0.7", lw=0.8, ls="--")
        if names is not None:
            ax.set_title(names[i], fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="upper left")
    if dates:
        axes[-1][0].set_xlabel(
            f"step (the forecast runs from {dates[0]} to {dates[-1]})", fontsize=8
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


@torch.no_grad()
def save_forecast_program_png(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                              path: Path, title: str) -> None:
    """``program.png`` of a forecaster: up to 3 validation windows ``x`` ``[N, 1, L]`` (spread
    over the split) with their forecasts and truth ``y`` ``[N, H]``."""
    pick = torch.linspace(0, len(x) - 1, min(3, len(x))).long()
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    forecast = model(x[pick].to(device)).cpu()
    model.train(was)
    save_forecast_png(
        x[pick, 0], forecast, y[pick], path, title, [f"validation window {int(i)}" for i in pick]
    )
