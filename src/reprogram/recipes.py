"""Recipes: named, measured settings for ``reprogram fit --recipe NAME``.

A recipe fills the ``fit`` flags it names (source, program, mapping and their options,
selection, epochs, learning rate); any flag given on the command line wins over it, and an
option given with ``--program-opt``/``--mapping-opt`` replaces the recipe's value of that
option only. ``reprogram list recipes NAME`` prints the flags a recipe stands for.

A recipe is one function returning those flags (argparse destinations) plus one
``@RECIPES.register`` naming the benchmark that measured it.
"""

from __future__ import annotations

from typing import Any

from .errors import ReprogramError
from .registry import Registry

RECIPES: Registry[dict[str, Any]] = Registry("recipe")


@RECIPES.register(
    "ucr-whisper",
    help="univariate series: Whisper hears the series (raw window + tone), every encoder "
    "layer pooled, MiniRocket's features beside them in one closed-form ridge head; the "
    "program is not trained (--epochs 0; --epochs 10 trains it), refit:1se "
    "(bench_ucr/sonify_side_minirocket_e0: 85.01% over the 20 V2S sets x 3 seeds vs "
    "MiniRocket 84.07 in the same run; 10 trained epochs: 84.92 at about 7x the time)",
    tags=("default:series",),
)
def ucr_whisper() -> dict[str, Any]:
    """The best measured time-series method of ``bench ucr-v2s``."""
    return {
        "source": "features:whisper-tiny.en#layers=all#pool=mean+std",
        "program": "sonify",
        "program_opt": ["raw=4"],
        "mapping": "linear",
        "mapping_opt": ["head=ridge", "side=minirocket"],
        "select": "refit:1se",
        "epochs": 0,
        "lr": 0.001,
    }


@RECIPES.register(
    "v2s",
    help="Voice2Series: the raw series in a Whisper window plus a learned waveform, decoder "
    "first-token logits, random many-to-one mapping (10 tokens a class), the window 4 × the "
    "series long (fit=4), 100 epochs at lr 0.01, held-out selection (bench_ucr/v2s_random_fit: "
    "76.35% over the 20 V2S sets vs MiniRocket 82.99)",
)
def v2s() -> dict[str, Any]:
    """Voice2Series (Yang et al. 2021) on whisper-tiny.en, the reference point."""
    return {
        "source": "whisper-tiny.en",
        "program": "waveform",
        "program_opt": ["fit=4"],
        "mapping": "random",
        "epochs": 100,
        "lr": 0.01,
        "batch_size": 32,
    }


@RECIPES.register(
    "vision-full",
    help="grey or small images on EfficientNet-Lite0: an additive prompt over the whole "
    "128-px canvas and a linear mapping started from a linear probe (epoch 0 a selection "
    "candidate), lr 0.001, 10 epochs: the vision benchmark's best reprogramming row "
    "(docs/results/vision.md; what `reprogram demo` runs)",
    tags=("default:image",),
)
def vision_full() -> dict[str, Any]:
    """Visual prompting (Bahng et al. 2022) with a linear mapping started from a probe (LP-FT).

    The zero-start linear mapping lost to the linear probe at 100 and 1,000 shots on
    Fashion-MNIST (0.774 against 0.828 at 100) and on a private grey-image task; started from
    the probe, whose untrained state stays a candidate, it scores 0.739 / 0.825 / 0.867 at
    10 / 100 / 1,000 shots against the probe's 0.715 / 0.828 / 0.874.
    """
    return {
        "source": "efficientnet-lite0",
        "program": "full",
        "mapping": "linear",
        "mapping_opt": ["init=probe"],
        "lr": 0.001,
        "epochs": 10,
        "canvas_size": 128,
    }


@RECIPES.register(
    "time-llm",
    help="forecasting (Time-LLM): a forecast: target's patches cross-attend to text "
    "prototypes of SmolLM2-135M kept to 2 blocks (CPU cost), its patch states projected to "
    "the horizon; Adam at 1e-3 halved every epoch, up to 10 epochs, patience 3 (the "
    "settings of bench forecast's reprogrammed row; docs/results/forecast.md)",
    tags=("default:forecast",),
)
def time_llm() -> dict[str, Any]:
    """Time-LLM (Jin et al. 2024) on a truncated SmolLM2, as ``bench forecast`` runs it."""
    return {
        "source": "smollm2-135m#depth=2",
        "program": "patch-reprogram",
        "program_opt": ["stride=16"],
        "mapping": "horizon",
        "optimizer_opt": ["decay=0.5"],
        "epochs": 10,
        "patience": 3,
        "lr": 0.001,
    }


@RECIPES.register(
    "r2dl",
    help="peptides or molecules (R2DL): each symbol of the target alphabet a learned "
    "combination of all-MiniLM-L6-v2's token embeddings, the pooled state read by a linear "
    "layer started from a linear probe, 10 epochs (bench sequences' dictionary row: mean "
    "ROC-AUC over amp, amp-tm, acp and b3db 0.812 / 0.885 / 0.928 at 8 / 32 / 128 shots a "
    "class, 3 seeds; solubility RMSE 0.70 with all its training rows; docs/results/sequences.md)",
)
def r2dl() -> dict[str, Any]:
    """R2DL (Vinod, Chen and Das) on MiniLM, as ``bench sequences`` runs its dictionary row."""
    return {
        "source": "minilm-l6",
        "program": "dictionary",
        "mapping": "linear",
        "mapping_opt": ["init=probe"],
        "epochs": 10,
    }


@RECIPES.register(
    "warp",
    help="peptides or molecules (WARP): 8 trained prompt vectors before the sequence spelled "
    "through all-MiniLM-L6-v2's tokenizer, a linear layer started from a linear probe, 10 "
    "epochs (bench sequences' default row, named before its runs: mean ROC-AUC 0.809 / "
    "0.882 / 0.915 at 8 / 32 / 128 shots a class over the four classification tasks, 3 "
    "seeds; 3,842 trained numbers; docs/results/sequences.md)",
    tags=("default:sequence",),
)
def warp() -> dict[str, Any]:
    """A WARP-style soft prompt (Hambardzumyan et al. 2021) on MiniLM, the bench's default
    reprogramming row."""
    return {
        "source": "minilm-l6",
        "program": "soft-prompt",
        "mapping": "linear",
        "mapping_opt": ["init=probe"],
        "epochs": 10,
    }


def default_recipe(target: str) -> str | None:
    """The recipe ``fit`` runs for ``target`` when given neither ``--source`` nor
    ``--recipe``: the one tagged ``default:KIND`` for a kind the target is tagged with
    (``image``: ``vision-full``, the vision bench's best reprogramming row; ``forecast``:
    ``time-llm``; ``sequence``: ``warp``, the sequences bench's default row; ``series``, the
    UCR archive's ``ucr:`` sets and series in ``npz:`` files: ``ucr-whisper``). None for
    targets whose kind cannot be told without loading them (an ``npz:`` file that cannot be
    read) and for names no target registry entry matches (``fit`` then names the error)."""
    # lazy: the target registry loads torch; listing recipes stays light without it
    from .data import target_kinds

    try:
        kinds = target_kinds(target)
    except ReprogramError:
        return None
    for entry in RECIPES:
        if any(tag.startswith("default:") and tag[len("default:"):] in kinds
               for tag in entry.tags):
            return entry.name
    return None


def command_line(flags: dict[str, Any]) -> list[str]:
    """The ``fit`` flags a recipe stands for, as command-line words."""
    words: list[str] = []
    for dest, value in flags.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            words += ["--" + dest.replace("_", "-"), str(v)]  # argparse's dest → its flag
    return words
