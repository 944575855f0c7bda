"""``hydra`` and ``multirocket-hydra``: transforms equal to aeon's, runs under the protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_series_baselines import config, rescore

from reprogram.baselines import run_baseline
from reprogram.baselines.hydra import HydraOptions, MultiRocketHydraOptions
from reprogram.errors import ReprogramError
from reprogram.transforms.hydra import HydraFeatures, MultiRocketFeatures


def _walks(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, length, generator=g).cumsum(-1)


def test_hydra_counts_equal_aeons_kernel_for_kernel() -> None:
    from aeon.transformations.collection.convolution_based._hydra import _HydraInternal

    x = _walks(12, 150)
    ours = HydraFeatures(150, HydraOptions())
    ours.fit(x, seed=3)
    theirs = _HydraInternal(150, 1)
    assert tuple(theirs.W.shape) == tuple(ours.weight.shape)
    theirs.W = ours.weight.clone()  # same kernels: the counting must agree exactly
    assert torch.equal(ours.counts(x), theirs(x))
    assert ours.dim == theirs(x).shape[1] == 5 * 2 * 2 * 32 * 8


def test_hydra_is_seeded_leaves_the_global_rng_and_scales_sparsely() -> None:
    x = _walks(16, 64)
    a, b, c = (HydraFeatures(64, HydraOptions(kernels=4, groups=8)) for _ in range(3))
    state = torch.get_rng_state()
    a.fit(x, seed=0)
    b.fit(x, seed=0)
    c.fit(x, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    raw = a.counts(x)
    out = a(x)
    assert torch.equal(out == 0, raw <= 0)  # the scaler keeps zero counts at zero
    nonzero = out[raw > 0]
    assert torch.isfinite(out).all() and nonzero.abs().max() < 50


def test_hydra_features_do_not_depend_on_the_chunking() -> None:
    x = _walks(10, 64, seed=2)
    hydra = HydraFeatures(64, HydraOptions(kernels=4, groups=8))
    hydra.fit(x, seed=0)
    whole = hydra.counts(x)
    assert torch.equal(hydra._batched_counts(x, batch=3), whole)
    assert torch.equal(hydra(x), torch.cat([hydra(x[:4]), hydra(x[4:])]))


def test_multirocket_features_equal_aeons_transform() -> None:
    from aeon.transformations.collection.convolution_based import MultiRocket

    x = _walks(10, 120, seed=1)
    ours = MultiRocketFeatures(120, MultiRocketHydraOptions(n_kernels=168))
    ours.fit(x, seed=5)
    theirs = MultiRocket(n_kernels=168, random_state=5).fit(x.numpy())
    expected = theirs.transform(x.numpy())
    assert ours.dim == expected.shape[1] == 8 * 168
    np.testing.assert_array_equal(ours(x).numpy(), expected)


@pytest.mark.parametrize(
    ("method", "options", "buffers"),
    [
        ("hydra", {"kernels": 4, "groups": 8}, {"featurizer.weight", "featurizer.sigma"}),
        (
            "multirocket-hydra",
            {"kernels": 4, "groups": 8, "n_kernels": 84},
            {"featurizer.hydra.weight", "featurizer.multirocket.diff_biases"},
        ),
    ],
)
def test_end_to_end_selection_artifact_and_eval(
    tmp_path: Path,
    waves: str,
    method: str,
    options: dict,
    buffers: set[str],
) -> None:
    result = run_baseline(config(tmp_path, waves, method, method_options=options))
    m = result.metrics
    assert m["test_accuracy"] > 0.8  # three easy wave shapes with NaN-padded short series
    best = max(m["candidates"], key=lambda c: (c["val_accuracy"], c["alpha"]))
    assert m["selected"] == {"alpha": best["alpha"]}
    state = load_file(str(result.out / "program.safetensors"))
    assert buffers | {"head.weight", "head.bias"} <= set(state)
    assert rescore(result.out) == m["test_accuracy"]


def test_bad_options_and_image_targets_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"at least 2 kernels per group"):
        HydraOptions(kernels=1)
    with pytest.raises(ValueError, match=r"n_kernels >= 84"):
        MultiRocketHydraOptions(n_kernels=10)
    with pytest.raises(ReprogramError, match=r"hydra classifies univariate time series"):
        run_baseline(config(tmp_path, "digits", "hydra", "img"))
