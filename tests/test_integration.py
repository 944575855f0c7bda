"""Integration: the real packaged EfficientNet-Lite0 (ImageNet) at small resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reprogram import FitConfig, ReprogrammedModel, fit
from reprogram.cli import main
from reprogram.sources import build_source

pytestmark = pytest.mark.integration


def test_lite0_fashion_mnist_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    config = FitConfig(
        source="efficientnet-lite0",
        target="fashion-mnist",
        program="resize-pad",
        mapping="linear",
        program_options={"canvas_size": 48},
        shots=6,
        epochs=2,
        out=str(out),
        progress=False,
    )
    result = fit(config)
    m = result.metrics
    assert m["source_parameters"] == 4_652_008
    assert m["trainable_parameters"] == 3 * (48 * 48 - 36 * 36) + 1000 * 10 + 10
    assert m["splits"] == {"train": 50, "val": 10, "test": 10_000}
    # even this tiny run is far above chance (10%): the frozen ImageNet features carry over
    assert m["test_accuracy"] > 0.3
    # the frozen weights are exactly those shipped
    assert result.model.source.fingerprint() == build_source("efficientnet-lite0").fingerprint()
    assert (out / "program.png").stat().st_size > 5_000
    assert main(["eval", str(out)]) == 0
    assert "yes, exactly" in capsys.readouterr().out


def test_lite0_flm_maps_to_imagenet_labels(tmp_path: Path) -> None:
    config = FitConfig(
        source="efficientnet-lite0",
        target="digits",
        program="border",
        mapping="flm",
        program_options={"canvas_size": 48, "inner_size": 24},
        shots=8,
        epochs=1,
        out=str(tmp_path / "flm"),
        progress=False,
        plots=False,
    )
    result = fit(config)
    table = result.config["mapping"]["table"]
    labels = [row["source_labels"][0] for row in table]
    names = result.model.source.label_names
    assert len(set(labels)) == 10 and all(label in names for label in labels)
    model = ReprogrammedModel.from_pretrained(tmp_path / "flm")
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(model(x), result.model(x))
