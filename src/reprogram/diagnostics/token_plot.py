"""``program.png`` for token programs: what each target symbol (and prompt vector) is made of."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..figures import subplots

if TYPE_CHECKING:
    from ..config import FitResult


#: Characters past this code point (CJK, Indic scripts, emoji, ...) are drawn as escapes
#: (``\u4e00``): matplotlib's default font has no glyph for most of them, and each missing
#: glyph would warn on stderr and draw as an empty box.
_DRAWN_BELOW = 0x2000


def _drawable(token: str) -> str:
    """``token`` with the characters the default font likely lacks written as escapes."""
    return "".join(c if ord(c) < _DRAWN_BELOW else ascii(c)[1:-1] for c in token)


def save_token_program_png(result: FitResult, path: Path, rows: int = 40) -> None:
    """A table: one row per symbol (soft prompts: per prompt vector first), the source tokens
    with the largest weights in it (cosine similarity for prompt vectors)."""
    program = result.model.program
    table = program.explain(top=5)[:rows]
    fig, ax = subplots(figsize=(9.0, 0.3 * len(table) + 1.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(len(table), -1)
    ax.axis("off")
    ax.text(0.0, -0.6, "target symbol", fontsize=9, weight="bold")
    ax.text(0.18, -0.6, "source tokens it is made of (weight)", fontsize=9, weight="bold")
    for r, (name, parts) in enumerate(table):
        text = ", ".join(f"{_drawable(token)} ({weight:+.2f})" for token, weight in parts)
        ax.text(0.01, r, _drawable(name), va="center", fontsize=8, family="monospace")
        ax.text(0.18, r, textwrap.shorten(text, 110), va="center", fontsize=7.5)
    more = len(program.vocabulary) - len(table)
    fig.suptitle(
        f"{result.config['source']['name']} reprogrammed ({result.config['program']['name']})"
        + (f"; {more} more symbols in config.json" if more > 0 else ""),
        fontsize=10,
    )
    with warnings.catch_warnings():  # a glyph the font still lacks draws as a box, quietly
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
