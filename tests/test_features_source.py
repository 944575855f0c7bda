"""``features:NAME`` sources: penultimate features instead of logits (visual prompting + LP)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reprogram import FitConfig, fit, load_artifact
from reprogram.errors import ReprogramError
from reprogram.sources import Source, build_source
from reprogram.sources.features import feature_source


def test_features_are_what_the_classifier_reads() -> None:
    base = build_source("tiny-random-cnn")
    feats = build_source("features:tiny-random-cnn")
    x = torch.rand(5, *base.input_size)
    captured: list[torch.Tensor] = []
    classifier = [m for m in base.module.modules() if isinstance(m, nn.Linear)][-1]
    classifier.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    with torch.no_grad():
        logits = base(x)
        out = feats(x)
    assert out.shape == (5, classifier.in_features) and logits.shape == (5, 100)
    assert torch.equal(out, captured[0].flatten(1))
    assert feats.outputs == "features" and base.outputs == "logits"
    assert feats.label_names[0] == "feature_0" and feats.num_classes == classifier.in_features
    assert feats.name == "features:tiny-random-cnn"
    assert feats.fingerprint() != base.fingerprint()
    assert not any(p.requires_grad for p in feats.parameters())


def _config(tmp_path: Path, **kw: object) -> FitConfig:
    base = dict(
        source="features:tiny-random-cnn",
        target="digits",
        program="full",
        mapping="linear",
        epochs=2,
        shots=20,
        seed=0,
        out=str(tmp_path / "run"),
        progress=False,
        plots=False,
        diagnostics=False,
    )
    base.update(kw)
    return FitConfig(**base)  # type: ignore[arg-type]


def test_fit_with_probe_start_on_features_and_reload(tmp_path: Path) -> None:
    result = fit(_config(tmp_path, mapping_options={"init": "probe"}, lr=0.001))
    m = result.metrics
    assert m["history"][0]["epoch"] == 0 and m["history"][0]["val_accuracy"] > 0.3
    assert m["trainable_parameters"] == result.model.trainable_parameters()
    model, config = load_artifact(tmp_path / "run")
    assert config["source"]["name"] == "features:tiny-random-cnn"
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), result.model(x))


@pytest.mark.parametrize("mapping", ["random", "flm", "ilm"])
def test_label_reading_mappings_refuse_features(tmp_path: Path, mapping: str) -> None:
    with pytest.raises(ReprogramError, match=r"not labels.*--mapping linear.*drop the features"):
        fit(_config(tmp_path, mapping=mapping))


def test_features_of_a_black_box_or_a_waveform_source_are_refused() -> None:
    with pytest.raises(ReprogramError, match="white-box"):
        build_source("features:query:tiny-random-cnn")
    waveform = Source(
        nn.Sequential(nn.Linear(16, 4)),
        name="wave",
        input_size=(16,),  # type: ignore[arg-type]
        mean=None,
        std=None,
        label_names=["a", "b", "c", "d"],
    )
    with pytest.raises(ReprogramError, match="needs an image source"):
        feature_source(waveform)
    with pytest.raises(ReprogramError, match="needs something after"):
        build_source("features:")
    headless = Source(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        name="headless",
        input_size=(3, 8, 8),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        label_names=["a", "b", "c", "d"],
    )
    with pytest.raises(ReprogramError, match=r"no nn\.Linear classifier"):
        feature_source(headless)


def test_image_feature_views_take_no_options() -> None:
    with pytest.raises(ReprogramError, match="takes no options"):
        build_source("features:tiny-random-cnn#layers=all")
    with pytest.raises(ReprogramError, match="key=value"):
        build_source("features:tiny-random-cnn#all")
