"""Is reprogramming worth it? Compare it with a plain baseline on the same few images.

Both methods see the same 20 images per class of scikit-learn's 8x8 digits and are scored
on the same held-out test split:

* baseline: logistic regression on the raw pixels (scikit-learn);
* reprogramming: a frozen EfficientNet-Lite0 (``pip install "reprogram[vision]"``) with a
  trained input program and linear label mapping (20% of the images validate the epoch).

    python examples/baseline_vs_reprogramming.py [--out runs/example-compare]

``--fast`` (or ``REPROGRAM_EXAMPLE_FAST=1``) swaps in a tiny random CNN and one epoch: it
checks that the script runs in seconds; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch
from sklearn.linear_model import LogisticRegression

import reprogram

SHOTS = 20
SEED = 0


def few_shot(data, shots: int, seed: int):
    """``data`` (from ``reprogram.load_target``) with ``shots`` training images per class,
    drawn with ``seed``; the test split stays the same."""
    gen = torch.Generator().manual_seed(seed)
    y = data.train.y
    picks = [
        torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=gen)[:shots]]
        for c in range(len(data.class_names))
    ]
    return dataclasses.replace(data, train=data.train.subset(torch.cat(picks)))


def pixel_baseline(data) -> float:
    """Test accuracy of logistic regression on the flattened pixels."""
    clf = LogisticRegression(max_iter=2000)
    clf.fit(data.train.x.flatten(1).numpy(), data.train.y.numpy())
    return float(clf.score(data.test.x.flatten(1).numpy(), data.test.y.numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/example-compare", help="artifact directory")
    parser.add_argument("--fast", action="store_true", help="tiny model and budget (a smoke run)")
    args = parser.parse_args()
    fast = args.fast or os.environ.get("REPROGRAM_EXAMPLE_FAST") == "1"

    data = few_shot(reprogram.load_target("digits"), SHOTS, SEED)
    baseline = pixel_baseline(data)

    if fast:
        settings = dict(source="tiny-random-cnn", program="resize-pad", epochs=1)
    else:
        settings = dict(
            source="efficientnet-lite0",
            program="full",
            program_options={"canvas_size": 128},
            epochs=10,
        )
    config = reprogram.FitConfig(
        target="digits",
        mapping="linear",
        seed=SEED,
        out=args.out,
        overwrite=True,
        progress=not fast,
        plots=False,
        **settings,
    )
    result = reprogram.fit(config, target=data)  # the same few images as the baseline
    ours = result.metrics["test_accuracy"]

    n_train, n_test = len(data.train.y), len(data.test.y)
    print(f"\ndigits, {SHOTS} images per class ({n_train} in all), test split of {n_test}:")
    print(f"  logistic regression on pixels        {baseline:.3f}")
    print(
        f"  reprogrammed {config.source:<22}  {ours:.3f}"
        f"  ({result.model.trainable_parameters():,} trained parameters)"
    )


if __name__ == "__main__":
    main()
