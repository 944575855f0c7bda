"""Pictures a person would rather look at than read: the program and the label mapping."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .diagnostics.forecast_plot import save_forecast_program_png
from .diagnostics.token_plot import save_token_program_png
from .diagnostics.v2s_bound import save_bound_png
from .diagnostics.waveform_plot import save_waveform_program_png
from .figures import subplots

if TYPE_CHECKING:
    from .config import FitResult
    from .data import Split


def _to_image(pixels: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` source pixels → ``[H, W, C]`` clipped to ``[0, 1]`` for imshow."""
    return pixels.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def save_program_png(result: FitResult, example: Split, path: Path) -> None:
    """``program.png``: the program on a blank input, beside reprogrammed examples."""
    model = result.model
    names = result.config["target"]["class_names"]
    label_names = model.source.label_names
    n = min(3, len(example))
    blank = torch.zeros(1, *example.x.shape[1:])
    fig, axes = subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.6))
    alone = model.program(blank)[0] - model.program.embed(blank)[0]  # what the program adds
    low, high = float(alone.min()), float(alone.max())
    axes[0].imshow(_to_image((alone - low) / max(high - low, 1e-8)))
    axes[0].set_title(
        f"the program alone\n(contrast-stretched, {low:+.2f} … {high:+.2f})", fontsize=9
    )
    for ax, i in zip(axes[1:], range(n), strict=False):
        x = example.x[i : i + 1]
        pixels = model.program(x)
        logits = model.source(pixels)
        top = label_names[int(logits.argmax(-1))]
        pred = names[int(model.scores(logits, x).argmax(-1))]
        ax.imshow(_to_image(pixels[0]))
        title = f"true {names[int(example.y[i])]} → {pred}\nsource sees: {top}"
        ax.set_title(textwrap.shorten(title, 80), fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(
        f"{result.config['source']['name']} reprogrammed ({result.config['program']['name']}): "
        f"what the frozen model sees",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _weight_heatmap(result: FitResult, path: Path, per_class: int = 2) -> None:
    """Heatmap of a learned linear mapping on the source labels that matter most."""
    weight = result.model.mapping.linear.weight.detach().cpu()  # [K_t, K_s]
    names = result.config["target"]["class_names"]
    labels = result.model.source.label_names
    if hasattr(result.model.mapping, "input_names"):  # side features sit after the labels
        labels = result.model.mapping.input_names(labels)
    columns: list[int] = []
    for row in weight:
        for i in torch.topk(row, k=min(per_class, row.numel())).indices.tolist():
            if i not in columns:
                columns.append(i)
    sub = weight[:, columns].numpy()
    bound = float(np.abs(sub).max()) or 1.0
    width = max(6.0, 0.42 * len(columns) + 2.8)  # room for the title with few columns
    fig, ax = subplots(figsize=(width, 0.42 * len(names) + 2.4))
    im = ax.imshow(sub, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(
        range(len(columns)), [labels[i] for i in columns], rotation=60, ha="right", fontsize=8
    )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("source labels (the two strongest for each class)")
    ax.set_ylabel("target class")
    fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
    ax.set_title(
        textwrap.fill(
            f"linear mapping: which {result.config['source']['name']} outputs serve each class",
            width=int(width * 11),
        ),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def save_mapping_png(result: FitResult, path: Path) -> None:
    """``mapping.png``: for each target class, the source labels that serve it."""
    if hasattr(result.model.mapping, "linear"):
        _weight_heatmap(result, path)
        return
    import matplotlib
    from matplotlib.patches import Rectangle

    table = result.config["mapping"]["table"]
    names = result.config["target"]["class_names"]
    rows = len(table)
    fig, ax = subplots(figsize=(8.5, 0.42 * rows + 1.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(rows, -1)
    ax.axis("off")
    ax.text(0.0, -0.6, "target class", fontsize=9, weight="bold")
    ax.text(0.3, -0.6, "source labels that serve it", fontsize=9, weight="bold")
    for r, (name, row) in enumerate(zip(names, table, strict=True)):
        labels = row["source_labels"][:5]
        weights = row.get("weights")
        parts = [
            f"{lab} ({w:+.2f})" if weights else lab
            for lab, w in zip(labels, weights or [None] * len(labels), strict=True)
        ]
        if len(row["source_labels"]) > 5:
            parts.append(f"… {len(row['source_labels']) - 5} more")
        color = matplotlib.colormaps["tab10"](r % 10)
        ax.add_patch(Rectangle((0.0, r - 0.4), 0.28, 0.8, color=color, alpha=0.25))
        ax.text(0.01, r, str(name), va="center", fontsize=9)
        ax.text(0.3, r, textwrap.shorten(", ".join(parts), 95), va="center", fontsize=8)
    fig.suptitle(
        f"label mapping '{result.config['mapping']['name']}': "
        f"{result.config['source']['name']} outputs → target classes",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def save_plots(result: FitResult, example: Split) -> None:
    """Write ``program.png`` and ``mapping.png`` (and ``bound.png`` when measured) into the run."""
    kind = getattr(getattr(result.model, "program", None), "plot_kind", "image")
    if kind == "forecast":  # history, forecast and truth; the mapping is a projection
        title = (
            f"{result.config['source']['name']} reprogrammed "
            f"({result.config['program']['name']}): validation forecasts"
        )
        save_forecast_program_png(
            result.model, example.x, example.y, result.out / "program.png", title
        )
        return
    if kind == "waveform":
        save_waveform_program_png(result, example, result.out / "program.png")
    elif kind == "tokens":
        save_token_program_png(result, result.out / "program.png")
    else:
        save_program_png(result, example, result.out / "program.png")
    save_mapping_png(result, result.out / "mapping.png")
    save_bound_png(result, result.out / "bound.png")
