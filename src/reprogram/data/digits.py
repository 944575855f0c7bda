"""scikit-learn's ``digits``: 1,797 grey 8×8 handwritten digits (values 0-16), 10 classes.

It has no official test split, so a fixed stratified 30% is held out with its own seed 0,
the same for every run whatever the run seed.
"""

from __future__ import annotations

import numpy as np
import torch

from . import TARGETS
from .base import TargetData
from .checks import make_split
from .splits import holdout_split

TEST_FRACTION = 0.3
SPLIT_SEED = 0


@TARGETS.register(
    "digits", help="scikit-learn digits: 10 classes, 1,797 grey 8x8 images", tags=("image",)
)
def digits() -> TargetData:
    """Digits as ``x`` float32 ``[N, 1, 8, 8]`` in ``[0, 1]`` (pixel / 16), fixed test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    keep_t, held_t = holdout_split(torch.from_numpy(y), TEST_FRACTION, SPLIT_SEED)
    keep, held = keep_t.numpy(), held_t.numpy()
    return TargetData(
        name="digits",
        train=make_split(x[keep], y[keep], "digits train split"),
        test=make_split(x[held], y[held], "digits test split"),
        class_names=[str(k) for k in range(10)],
        info={
            "source": "sklearn.datasets.load_digits",
            "split": f"no official split; fixed stratified {TEST_FRACTION:.0%} test split "
            f"(seed {SPLIT_SEED}, independent of the run seed)",
        },
    )
