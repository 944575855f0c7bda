"""Train a soft prompt through a language model you can only query over HTTP.

The setting of Black-Box Tuning: the model's tokenizer and input embeddings are public, the
transformer answers behind an API. Here the API is ``reprogram serve``'s app, started in this
process on a free loopback port (``reprogram serve --source minilm-l6`` does the same from a
shell). The client builds the rows of embeddings locally, checks that its embedding table is
the server's, and trains the prompt in a 32-dimensional subspace with ``rgf`` (zeroth order);
the linear head after the box gets exact gradients. Every row sent is a counted query.

    python examples/language_model_over_http.py [--out runs/example-lm-http]

With MiniLM on ``amp-tm`` (32 shots per class) this gives the same test ROC-AUC as the same
run in-process (0.961 and 3,366 queries on seed 0; ``benchmarks/results/language_http``), in
one to two minutes on a busy 2-core machine. ``--fast`` (or ``REPROGRAM_EXAMPLE_FAST=1``)
swaps in a tiny random language model.
"""

from __future__ import annotations

import argparse
import os

import reprogram
from reprogram.blackbox.language import language_model
from reprogram.blackbox.server import create_app, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/example-lm-http", help="artifact directory")
    parser.add_argument("--fast", action="store_true", help="a tiny model (a smoke run)")
    args = parser.parse_args()
    fast = args.fast or os.environ.get("REPROGRAM_EXAMPLE_FAST") == "1"
    name, target, shots, epochs = (
        ("tiny-random-lm", "amp", 4, 1) if fast else ("minilm-l6", "amp-tm", 32, 10)
    )

    served = reprogram.build_source(name)
    with running_server(create_app(*language_model(served))) as url:  # the API
        config = reprogram.FitConfig(
            source=url,  # only queries reach the model
            target=target,
            shots=shots,
            program="soft-prompt",
            program_options={"subspace": 32},
            mapping="linear",
            mapping_options={"init": "probe"},
            optimizer="rgf",
            optimizer_options={"lr": 0.1},
            epochs=epochs,
            seed=0,
            out=args.out,
            overwrite=True,
            progress=not fast,
            plots=False,
        )
        result = reprogram.fit(config)
    m = result.metrics
    print(f"\n{name} served at {url}, {target} ({shots} shots per class), optimizer rgf:")
    print(f"  test ROC-AUC  {m['test_roc_auc']:.3f}")
    print(f"  queries sent  {m['queries']:,}")
    print(f"  artifact      {result.out}")


if __name__ == "__main__":
    main()
