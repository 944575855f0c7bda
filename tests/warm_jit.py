"""Compile aeon's numba kernels (MiniRocket, MultiRocket) into numba's on-disk cache.

``make test`` runs this in the background while ruff and mypy use one core, so the test
suite finds the kernels compiled instead of spending about two minutes of its own time on
it (numba compiles them once per fresh environment, ``cache=True``). It changes no result:
a test that runs before the cache is written compiles the kernels itself. Run directly:
``python tests/warm_jit.py``.
"""

from __future__ import annotations

import torch

from reprogram.transforms import build_transform


def main() -> None:
    x = torch.randn(12, 1, 64, generator=torch.Generator().manual_seed(0))
    for name, options in (
        ("minirocket", {"n_kernels": 84}),
        ("multirocket-hydra", {"n_kernels": 84, "kernels": 4, "groups": 8}),
    ):
        transform = build_transform(name, 64, options)
        transform.fit(x, seed=0)
        transform(x)


if __name__ == "__main__":
    main()
