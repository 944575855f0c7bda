"""Shared fixtures."""

from __future__ import annotations

import numpy as np
import pytest


def _waves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` series of length 48 per class: sine, square, sawtooth, random phase and noise."""
    t = np.linspace(0, 4 * np.pi, 48)
    xs, ys = [], []
    for label, shape in enumerate((np.sin, lambda v: np.sign(np.sin(v)), lambda v: v % 2.0)):
        for _ in range(n):
            xs.append(shape(t + rng.uniform(0, 2 * np.pi)) + 0.1 * rng.normal(size=t.size))
            ys.append(label)
    x = np.array(xs, dtype=np.float32)
    x[::5, 36:] = np.nan  # every fifth series is shorter: padded at the end
    return x, np.array(ys)


@pytest.fixture(scope="session")
def waves(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three wave shapes, some series shorter and NaN-padded at the end, as ``npz:PATH``
    (so that ``reprogram eval`` can rebuild the splits by name)."""
    rng = np.random.default_rng(0)
    x_train, y_train = _waves(12, rng)
    x_test, y_test = _waves(10, rng)
    path = tmp_path_factory.mktemp("series") / "waves.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"npz:{path}"
