"""``--program auto`` (the default) picks the program from the input shapes; image programs
given a series or an audio source say what to use instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprogram import FitConfig, ReprogrammedModel, fit
from reprogram.data import load_target
from reprogram.errors import ReprogramError
from reprogram.programs import AUTO, build_program, resolve_program

IMAGE, SERIES = (1, 8, 8), (1, 48)
IMAGE_SOURCE, AUDIO_SOURCE = (3, 32, 32), (16000,)


@pytest.mark.parametrize(
    ("input_shape", "source_size", "expected"),
    [
        (IMAGE, IMAGE_SOURCE, "resize-pad"),
        (SERIES, IMAGE_SOURCE, "series-image"),
        (SERIES, AUDIO_SOURCE, "waveform"),
    ],
)
def test_auto_resolves_by_shapes(
    input_shape: tuple[int, ...], source_size: tuple[int, ...], expected: str
) -> None:
    assert resolve_program(AUTO, input_shape, source_size) == expected
    assert resolve_program("border", input_shape, source_size) == "border"  # named: kept


def test_auto_explains_what_no_program_does() -> None:
    with pytest.raises(ReprogramError, match="no program plays images to an audio source"):
        resolve_program(AUTO, IMAGE, AUDIO_SOURCE)
    with pytest.raises(ReprogramError, match="name one with --program"):
        resolve_program(AUTO, (3, 4, 8, 8), IMAGE_SOURCE)


@pytest.mark.parametrize("name", ["border", "resize-pad", "full", "resize", "coarse"])
def test_image_programs_name_the_series_program_for_each_source(name: str) -> None:
    with pytest.raises(ReprogramError, match="`series-image` draws a series"):
        build_program(name, {}, SERIES, IMAGE_SOURCE)
    with pytest.raises(ReprogramError, match="`waveform` or `sonify` plays a series"):
        build_program(name, {}, SERIES, AUDIO_SOURCE)
    with pytest.raises(ReprogramError, match="need an image source"):
        build_program(name, {}, IMAGE, AUDIO_SOURCE)


def test_fit_records_the_resolved_program_and_reloads(tmp_path: Path, waves: str) -> None:
    """A series on an image source with no --program: series-image, saved under its name."""
    out = tmp_path / "auto"
    config = FitConfig(
        source="tiny-random-cnn", target=waves, mapping="linear", epochs=1, seed=0,
        out=str(out), progress=False, plots=False,
    )  # fmt: skip
    assert config.program == AUTO
    result = fit(config)
    assert result.config["program"]["name"] == "series-image"
    again = ReprogrammedModel.from_pretrained(out)
    x = load_target(waves).test.x
    assert again.predict(x).tolist() == result.model.predict(x).tolist()
