"""Figures without pyplot: every picture the library draws starts here."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure


def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any) -> Any:
    """``(fig, axes)`` like ``pyplot.subplots``, on a standalone ``matplotlib.figure.Figure``.

    No pyplot: nothing switches the backend (a notebook's stays as it is), and the figure is
    not registered anywhere, so it needs no ``close``; ``fig.savefig`` renders with Agg.
    """
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


__all__ = ["subplots"]
