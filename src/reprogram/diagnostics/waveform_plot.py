"""``program.png`` for waveform programs: the learned waveform and reprogrammed examples."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..figures import subplots
from ..sources.audio import LogMel

if TYPE_CHECKING:
    from ..config import FitResult
    from ..data import Split


def _front_end(source: torch.nn.Module) -> torch.nn.Module | None:
    """The source's log-mel front end (the first :class:`LogMel` inside it), if it has one."""
    return next((m for m in source.modules() if isinstance(m, LogMel)), None)


def _last_view(wave: torch.Tensor, views: tuple[int, ...] | None) -> torch.Tensor:
    """The last view ``[1, T_v]`` of a window ``[1, T]`` made of views side by side (the tone
    of ``sonify``), or the whole window when the program has one view."""
    return wave[:, -views[-1] :] if views else wave


@torch.no_grad()
def save_waveform_program_png(result: FitResult, example: Split, path: Path) -> None:
    """The program ``M ⊙ θ`` over the window, then up to three reprogrammed validation series.

    Time runs in seconds at the source's sample rate; the span the series occupies is shaded.
    When the source hears through a log-mel front end (Whisper), a second column shows the
    log-mel image the encoder reads for each example (of the last view, for multi-view
    programs such as ``sonify``: the tone whose pitch follows the series).
    """
    model = result.model
    program = model.program
    rate = int(getattr(model.source, "sample_rate", 16_000))
    names = result.config["target"]["class_names"]
    labels = model.source.label_names
    n = min(3, len(example))
    front = _front_end(model.source)
    views = getattr(program, "views", None)
    if front is not None:
        fig, grid = subplots(
            n + 1, 2, figsize=(12.5, 1.9 * (n + 1)), gridspec_kw={"width_ratios": [2.2, 1]}
        )
        axes, mels = list(grid[:, 0]), list(grid[:, 1])
        mels[0].axis("off")
        for ax in axes[1:]:
            ax.sharex(axes[0])
    else:
        fig, column = subplots(n + 1, 1, figsize=(9.0, 1.9 * (n + 1)), sharex=True)
        axes, mels = list(column), [None] * (n + 1)
    seconds = torch.arange(program.window) / rate
    pattern = program.pattern().detach().cpu()
    axes[0].plot(seconds, pattern, lw=0.5, color="tab:purple")
    axes[0].set_title(
        f"the program alone (M ⊙ θ, {program.mask_mode}; range {float(pattern.min()):+.3f} … "
        f"{float(pattern.max()):+.3f})",
        fontsize=9,
    )
    for ax, mel_ax, i in zip(axes[1:], mels[1:], range(n), strict=False):
        x = example.x[i : i + 1]
        wave = program(x)
        if mel_ax is not None and front is not None:  # both set together (typing)
            heard = _last_view(wave, views)
            image = front(heard.float())[0].cpu().numpy()  # [n_mels, frames]
            span = heard.shape[-1] / rate
            mel_ax.imshow(
                image, origin="lower", aspect="auto", cmap="magma", extent=(0, span, 0, len(image))
            )
            what = "log-mel the encoder reads" + (" (last view)" if views else "")
            mel_ax.set_title(what, fontsize=8)
            mel_ax.set_ylabel("mel bin", fontsize=7)
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
    if mels[-1] is not None:
        mels[-1].set_xlabel("seconds")
    if n:
        axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"{result.config['source']['name']} reprogrammed ({result.config['program']['name']}): "
        "what the frozen model hears",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


__all__ = ["save_waveform_program_png"]
