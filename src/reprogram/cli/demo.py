"""``reprogram demo``: the main job on embedded, offline defaults, explained as it runs.

It fits the vision benchmark's best reprogramming recipe (EfficientNet-Lite0 on 100
Fashion-MNIST images per class), prints the run's summary and then what the frozen ImageNet
model learned to see in each target class.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from ..flags import key_values
from .evaluation import _load_eval_splits
from .report import summary, top1_by_class

# The vision benchmark's best reprogramming row (docs/results/vision.md): the vision-full
# recipe on 100 images per class.
DEMO_RECIPE = "vision-full"


def _demo_settings() -> dict[str, Any]:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..recipes import RECIPES

    return {**RECIPES.get(DEMO_RECIPE).builder(), "target": "fashion-mnist", "shots": 100}


def cmd_demo(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from .. import FitConfig, fit

    d = _demo_settings()
    print(
        textwrap.fill(
            f"reprogram demo: EfficientNet-Lite0 was trained on ImageNet photos and has never seen "
            f"Fashion-MNIST. Its weights stay frozen; we train only a {d['program']} input program "
            f"and a {d['mapping']} label mapping (started from a linear probe) on {d['shots']} "
            f"grey images per class ({d['epochs']} epochs, {d['canvas_size']}-pixel canvas), "
            f"choose the epoch on a validation split (epoch 0: the probe alone), and score the "
            f"10,000-image test set once.",
            width=100,
        )
        + "\n"
    )
    config = FitConfig(
        source=d["source"],
        target=d["target"],
        program=d["program"],
        mapping=d["mapping"],
        program_options={"canvas_size": d["canvas_size"]},
        mapping_options=key_values(d.get("mapping_opt"), "--mapping-opt"),
        lr=d.get("lr"),
        shots=d["shots"],
        epochs=d["epochs"],
        seed=args.seed,
        recipe=DEMO_RECIPE,
        out=args.out,
        overwrite=True,
        progress=not args.quiet,
    )
    result = fit(config)
    print()
    print(summary(result))
    print("\nWhat the frozen ImageNet model learned to do, per Fashion-MNIST class:")
    print("  (sees: its most frequent ImageNet top-1 label on reprogrammed validation images;")
    print("   weights: the ImageNet outputs the linear mapping leans on most)")
    names = result.config["target"]["class_names"]
    splits, _ = _load_eval_splits(result.config)
    seen = top1_by_class(result.model, splits.val)
    for c, (name, row) in enumerate(zip(names, result.config["mapping"]["table"], strict=True)):
        label, share = seen[c]
        print(
            f"  {name:<12} sees {label!r} ({share:.0%})".ljust(48)
            + f"weights: {', '.join(row['source_labels'][:3])}"
        )
    print(f"\nPictures: {result.out / 'program.png'} and {result.out / 'mapping.png'}")
    return 0
