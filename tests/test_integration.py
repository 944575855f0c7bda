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


def _foolbox_photos() -> list[Path]:
    """foolbox's 20 sample ImageNet photos (``imagenet_<i>_<label>.jpg``, 512 × 512 RGB), read
    as files: foolbox is installed by ``make install`` and never imported."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        folder = Path(str(distribution("foolbox").locate_file("foolbox/data")))
    except PackageNotFoundError:
        pytest.fail("foolbox's sample images are missing: run `make install`")
    photos = sorted(folder.glob("imagenet_*.jpg"))
    assert len(photos) == 20
    return photos


def test_real_photos_keep_their_colours_on_the_way_to_the_source() -> None:
    """Photo files, read as `predict` reads a user's images, resized by the `resize`
    program and normalised by the source: the packaged ImageNet model names them. Measured:
    17 of 20 top-1, all 20 in the top 5, mean true-class probability 0.657; with the channels
    swapped 0.532, in grey 0.556 (what a colour bug on this path would give)."""
    from reprogram.predict import load_inputs
    from reprogram.programs import PROGRAMS

    photos = _foolbox_photos()
    labels = torch.tensor([int(p.stem.rsplit("_", 1)[1]) for p in photos])
    names, x, _ = load_inputs([str(p) for p in photos], (3, 224, 224))
    assert names == [str(p) for p in photos] and x.shape == (20, 3, 224, 224)
    assert -1e-5 <= float(x.min()) and float(x.max()) <= 1.0 + 1e-5  # resampling rounding
    source = build_source("efficientnet-lite0")
    entry = PROGRAMS.get("resize")
    program = entry.builder(entry.config(canvas_size=224), (3, 224, 224), source.input_size)
    with torch.no_grad():
        probs = source(program(x)).softmax(-1)
    top5 = probs.topk(5).indices
    assert bool((top5 == labels[:, None]).any(1).all())
    assert int((probs.argmax(-1) == labels).sum()) >= 16
    assert float(probs[torch.arange(20), labels].mean()) > 0.6
