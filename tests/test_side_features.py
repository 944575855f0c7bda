"""``linear:head=ridge,side=NAME``: a series transform's features beside the source outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import Crash, CrashAt
from test_waveform import _audio_source, _sines_vs_squares

from reprogram import FitConfig, ReprogrammedModel, fit
from reprogram.data.splits import prepare_splits
from reprogram.errors import ReprogramError
from reprogram.mappings.side import build_side, side_features, side_names
from reprogram.ridge import fit_ridge_loo
from reprogram.transforms.minirocket import MiniRocketFeatureOptions, MiniRocketFeatures

K = 8  # the tiny audio source's labels


def _config(tmp_path: Path, name: str = "run", **kw: object) -> FitConfig:
    base = dict(
        source="tiny-audio",
        target="synthetic",
        program="sonify",
        mapping="linear",
        mapping_options={"head": "ridge", "side": "minirocket"},
        epochs=2,
        batch_size=4,
        lr=0.01,
        seed=3,
        out=str(tmp_path / name),
        progress=False,
        plots=False,
        diagnostics=False,
    )
    base.update(kw)
    return FitConfig(**base)  # type: ignore[arg-type]


def test_side_names_are_the_series_transforms() -> None:
    assert set(side_names()) == {"minirocket", "hydra", "multirocket-hydra"}


@pytest.mark.parametrize("name", ["minirocket", "hydra", "multirocket-hydra"])
def test_every_side_transform_fits_on_series_and_chunks_consistently(name: str) -> None:
    x = _sines_vs_squares().train.x  # NaN-padded at the end for a third of them
    side = build_side(name, (1, 60))
    side.fit(x, seed=0)
    chunked = side_features(side, x, batch=5)
    assert chunked.shape == (len(x), side.dim) and bool(torch.isfinite(chunked).all())
    torch.testing.assert_close(chunked, side(x))
    assert float(chunked.std(0).max()) > 0  # fitted: the features vary across series


def test_head_is_one_ridge_on_source_outputs_and_minirocket_of_the_raw_series(
    tmp_path: Path,
) -> None:
    data = _sines_vs_squares()
    result = fit(_config(tmp_path), source=_audio_source(k=K), target=data)
    model, m = result.model, result.metrics
    side = model.mapping.side
    assert isinstance(side, MiniRocketFeatures) and side.length == 60
    assert model.mapping.linear.in_features == K + side.dim
    splits = prepare_splits(data, shots=None, val_fraction=0.2, seed=3)
    # the transform is fitted on the training split only, with the run's seed
    alone = MiniRocketFeatures(60, MiniRocketFeatureOptions())
    alone.fit(splits.train.x, seed=3)
    assert torch.equal(side.biases, alone.biases)
    with torch.no_grad():
        both = torch.cat([model.source_logits(splits.train.x), alone(splits.train.x)], dim=1)
    again = fit_ridge_loo(both, splits.train.y, splits.num_classes)
    chosen = next(f for f in m["callbacks"]["ridge_head"]["fits"] if f["epoch"] == m["best_epoch"])
    assert again.alpha == chosen["alpha"]
    torch.testing.assert_close(model.mapping.linear.weight, again.weight, atol=1e-4, rtol=1e-4)
    # the artifact carries the fitted transform: a reload predicts the same classes
    reloaded = ReprogrammedModel.from_pretrained(tmp_path / "run", source=_audio_source(k=K))
    assert torch.equal(reloaded.mapping.side.biases, side.biases)
    x = data.test.x
    assert torch.equal(reloaded.predict(x), model.predict(x))
    assert m["test_accuracy"] is not None and m["test_accuracy"] >= 0.5
    table = result.config["mapping"]["table"]
    assert len(table) == 2 and all(len(row["source_labels"]) == 3 for row in table)


def test_side_run_resumes_to_the_same_run(tmp_path: Path) -> None:
    data = _sines_vs_squares()
    straight = fit(_config(tmp_path, "straight"), source=_audio_source(k=K), target=data)
    with pytest.raises(Crash):
        fit(
            _config(tmp_path, "resumed"),
            source=_audio_source(k=K),
            target=data,
            callbacks=[CrashAt(2)],
        )
    resumed = fit(_config(tmp_path, "resumed", resume=True), source=_audio_source(k=K), target=data)
    assert [r["val_loss"] for r in straight.metrics["history"]] == [
        r["val_loss"] for r in resumed.metrics["history"]
    ]
    assert straight.metrics["callbacks"] == resumed.metrics["callbacks"]
    assert straight.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]
    assert torch.equal(straight.model.mapping.side.biases, resumed.model.mapping.side.biases)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"side": "minirocket"}, "add head=ridge"),
        ({"head": "ridge", "side": "rocket"}, "choose one of minirocket"),
    ],
)
def test_bad_side_options_say_what_to_do(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(ReprogramError, match=message):
        fit(
            _config(tmp_path, mapping_options=options),
            source=_audio_source(k=K),
            target=_sines_vs_squares(),
        )


def test_side_refuses_image_targets(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        source="features:tiny-random-cnn",
        target="digits",
        program="full",
        shots=5,
    )
    with pytest.raises(ReprogramError, match="univariate time series"):
        fit(config)


def test_plots_name_side_features_beside_source_labels(tmp_path: Path) -> None:
    """mapping.png reads K_s + F weights; the side's columns get their own names (this
    crashed with an IndexError when a side feature was among the strongest)."""
    result = fit(
        _config(tmp_path, plots=True, epochs=0),
        source=_audio_source(k=K),
        target=_sines_vs_squares(),
    )
    mapping = result.model.mapping
    names = mapping.input_names(result.model.source.label_names)
    assert len(names) == mapping.linear.in_features
    assert names[K] == "minirocket[0]" and names[K - 1] == result.model.source.label_names[-1]
    assert (tmp_path / "run" / "mapping.png").stat().st_size > 0
    assert (tmp_path / "run" / "program.png").stat().st_size > 0
