"""``program.png`` for waveform programs: the learned waveform and reprogrammed examples."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..data import Split
    from ..train import FitResult


@torch.no_grad()
def save_waveform_program_png(result: FitResult, example: Split, path: Path) -> None:
    """The program ``M ⊙ θ`` over the window, then up to three reprogrammed validation series.

    Time runs in seconds at the source's sample rate; the span the series occupies is shaded.
    """
    from ..plots import pyplot

    plt = pyplot()
    model = result.model
    program = model.program
    rate = int(getattr(model.source, "sample_rate", 16_000))
    names = result.config["target"]["class_names"]
    labels = model.source.label_names
    n = min(3, len(example))
    fig, axes = plt.subplots(n + 1, 1, figsize=(9.0, 1.9 * (n + 1)), sharex=True)
    seconds = torch.arange(program.window) / rate
    pattern = program.pattern().detach().cpu()
    axes[0].plot(seconds, pattern, lw=0.5, color="tab:purple")
    axes[0].set_title(
        f"the program alone (M ⊙ θ, {program.mask_mode}; range {float(pattern.min()):+.3f} … "
        f"{float(pattern.max()):+.3f})",
        fontsize=9,
    )
    for ax, i in zip(axes[1:], range(n), strict=False):
        x = example.x[i : i + 1]
        wave = program(x)
        placed, inside = program.place(x)
        logits = model.source(wave)
        top = labels[int(logits.argmax(-1))]
        pred = names[int(model.scores(logits, x).argmax(-1))]
        ax.plot(seconds, wave[0].cpu(), lw=0.5, color="tab:gray", label="what the source hears")
        ax.plot(seconds, placed[0].cpu(), lw=0.8, color="tab:blue", label="the series")
        where = inside[0].cpu() > 0
        if bool(where.any()):
            lo, hi = seconds[where][0], seconds[where][-1]
            ax.axvspan(float(lo), float(hi), color="tab:blue", alpha=0.08)
        title = f"true {names[int(example.y[i])]} → {pred}"
        if getattr(model.source, "outputs", "logits") == "logits":  # features are not tokens
            title += f"; first token heard: {top!r}"
        ax.set_title(textwrap.shorten(title, 100), fontsize=8)
    axes[-1].set_xlabel("seconds")
    if n:
        axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"{result.config['source']['name']} reprogrammed ({result.config['program']['name']}): "
        "what the frozen model hears",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["save_waveform_program_png"]
