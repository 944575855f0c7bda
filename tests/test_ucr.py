"""``ucr:NAME`` targets and time-series data checks (series ``[N, 1, L]``, trailing NaN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram.data import load_target
from reprogram.data import ucr as ucr_module
from reprogram.data.checks import make_series_split
from reprogram.data.series import pad_to, resample_valid, series_batch, valid_lengths
from reprogram.data.splits import prepare_splits
from reprogram.errors import DataError


def test_packaged_set_has_official_split_and_label_mapping() -> None:
    data = load_target("ucr:GunPoint")
    assert data.modality == "series"
    assert data.train.x.shape == (50, 1, 150) and data.test.x.shape == (150, 1, 150)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    assert data.class_names == ["1", "2"]
    # the archive's labels, read straight from the TSV: 1 → class 0, 2 → class 1
    tsv = ucr_module._wheel_sets()["GunPoint"] / "GunPoint_TRAIN.tsv"
    raw = np.loadtxt(tsv, delimiter="\t")
    assert data.train.y.tolist() == (raw[:, 0] - 1).astype(int).tolist()
    # not rescaled: the series are the file's values
    assert torch.equal(data.train.x[:, 0], torch.from_numpy(raw[:, 1:]).float())


def test_negative_labels_keep_their_names_in_numeric_order() -> None:
    data = load_target("ucr:ECG200")
    assert data.class_names == ["-1", "1"]
    assert (len(data.train), len(data.test)) == (100, 100)


def test_names_are_case_insensitive_and_trace_comes_from_tslearn() -> None:
    assert load_target("ucr:gunpoint").train.x.shape == (50, 1, 150)
    trace = load_target("ucr:Trace")
    assert trace.train.x.shape == (100, 1, 275) and trace.num_classes == 4
    assert "tslearn" in trace.info["source"]


def test_unequal_length_set_is_nan_padded_at_the_end_only() -> None:
    data = load_target("ucr:PickupGestureWiimoteZ")
    x = torch.cat([data.train.x, data.test.x])
    lengths = valid_lengths(x)
    assert int(lengths.min()) < x.shape[-1] == int(lengths.max())
    for row, n in zip(x[:, 0], lengths.tolist(), strict=True):
        assert not torch.isnan(row[:n]).any() and torch.isnan(row[n:]).all()
    assert "NaN" in data.info["padding"]


def test_unknown_set_gives_a_clear_error_listing_offline_sets() -> None:
    with pytest.raises(DataError, match=r"not a univariate set.*Did you mean GunPoint.*offline"):
        load_target("ucr:GunPont")
    with pytest.raises(DataError, match="ucr:"):
        load_target("ucr:NoSuchSet")


def test_archive_set_missing_offline_says_which_sets_are_offline(monkeypatch) -> None:
    def offline(name: str, path: Path) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(ucr_module, "_from_aeon", offline)
    with pytest.raises(DataError, match=r"Wine is not available offline.*GunPoint"):
        load_target("ucr:Wine")


def test_nan_inside_a_series_and_inf_are_rejected() -> None:
    y = np.array([0, 1])
    with pytest.raises(DataError, match="NaN inside series"):
        make_series_split(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]]), y, "here")
    with pytest.raises(DataError, match="infinite"):
        make_series_split(np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]]), y, "here")
    with pytest.raises(DataError, match="all NaN"):
        make_series_split(np.array([[np.nan] * 3, [1.0, 2.0, 3.0]]), y, "here")
    # a set with missing values in the middle of series (not padding) is refused clearly
    with pytest.raises(DataError, match="NaN inside series"):
        load_target("ucr:DodgerLoopDay")


def test_trailing_nan_is_accepted_and_resampled() -> None:
    x = np.array([[1.0, 2.0, 3.0, np.nan], [0.0, 1.0, 2.0, 3.0]])
    split = make_series_split(x, np.array([0, 1]), "x")
    assert split.x.shape == (2, 1, 4)
    assert valid_lengths(split.x).tolist() == [3, 4]
    out = resample_valid(split.x, 5)
    assert torch.allclose(out[0, 0], torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    assert torch.allclose(out[1, 0], torch.tensor([0.0, 0.75, 1.5, 2.25, 3.0]))
    assert torch.isnan(pad_to(split.x, 6)[:, :, 4:]).all()


@pytest.mark.parametrize("length", [40, 57])
def test_resampling_a_series_does_not_depend_on_its_batch(length: int) -> None:
    x = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(0))
    x[::3, :, 31:] = float("nan")  # rows 0 and 3 shorter
    together = resample_valid(x, length)
    apart = torch.cat([resample_valid(x[i : i + 1], length) for i in range(len(x))])
    assert torch.equal(together, apart)
    if length == 40:  # a full-length series at its own length comes back unchanged
        assert torch.equal(together[1], x[1])


def test_npz_series_become_a_series_target(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    x = np.random.default_rng(0).normal(size=(12, 30)).astype(np.float32)
    x[0, 25:] = np.nan
    y = np.arange(12) % 3
    np.savez(path, x_train=x, y_train=y, x_test=x[:, None], y_test=y)
    data = load_target(f"npz:{path}")
    assert data.modality == "series" and data.input_shape == (1, 30)
    bad = x.copy()
    bad[1, 3] = np.nan
    np.savez(path, x_train=bad, y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="NaN inside series"):
        load_target(f"npz:{path}")


def test_validation_is_stratified_and_seeded_for_series_and_tiny_classes() -> None:
    data = load_target("ucr:ECG5000")  # class '5' has only 2 training series
    a = prepare_splits(data, seed=3)
    b = prepare_splits(data, seed=3)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert a.modality == "series" and a.input_shape == (1, 140)
    assert len(a.train) + len(a.val) == 500
    for c in range(data.num_classes):
        assert int((a.val.y == c).sum()) >= 1 and int((a.train.y == c).sum()) >= 1
    assert not torch.equal(prepare_splits(data, seed=4).val.x, a.val.x)


def test_series_batch_pads_short_and_refuses_long_series() -> None:
    names, x = series_batch([("a.npy", np.ones(4)), ("b.npy", np.ones((2, 6)))], 6)
    assert names == ["a.npy", "b.npy[0]", "b.npy[1]"] and x.shape == (3, 1, 6)
    assert valid_lengths(x).tolist() == [4, 6, 6]
    with pytest.raises(DataError, match="longer than the 6 points"):
        series_batch([("c.npy", np.ones(7))], 6)
