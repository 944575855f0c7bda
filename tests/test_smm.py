"""``smm``: sample-specific masks over a shared pattern (Cai et al., 2024)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from reprogram import fit, load_artifact
from reprogram.errors import ReprogramError
from reprogram.programs import build_program
from reprogram.programs.smm import SampleMaskProgram


def test_masks_are_per_example_patchwise_and_start_as_the_resized_image() -> None:
    torch.manual_seed(0)
    program, _ = build_program("smm", {"patch": 4}, (1, 8, 8), (3, 32, 32))
    assert isinstance(program, SampleMaskProgram)
    x = torch.rand(2, 1, 8, 8)
    placed = program.place(x)
    assert torch.equal(program(x), placed)  # θ = 0: the untrained program is the resized image
    masks = program.masks(placed)
    assert masks.shape == (2, 3, 32, 32)
    assert not torch.equal(masks[0], masks[1])  # one mask per example
    blocks = masks[0, 0].unfold(0, 4, 4).unfold(1, 4, 4)  # [8, 8, 4, 4]: one value per block
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))
    with torch.no_grad():
        program.theta.fill_(1.0)
    assert torch.allclose(program(x), placed + masks)
    info = program.describe()
    assert info["patch"] == 4 and 0 < int(info["generator_parameters"]) < 30_000  # type: ignore[call-overload]


def test_one_mask_for_all_channels_and_options_checked() -> None:
    program, _ = build_program("smm", {"mask_channels": 1, "patch": 8}, (3, 16, 16), (3, 32, 32))
    assert program.generator.net[-1].out_channels == 1
    for options, message in [
        ({"patch": 3}, "patch must be 1, 2, 4, 8 or 16"),
        ({"mask_channels": 2}, "mask_channels must be 1 or the source's 3"),
        ({"canvas_size": 36, "patch": 8}, "multiple of patch"),
        ({"inner_size": 16}, "omit inner_size"),
    ]:
        with pytest.raises(ReprogramError, match=message):
            build_program("smm", options, (1, 8, 8), (3, 32, 32))


def test_smm_trains_pattern_and_generator_and_reloads(tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path, program="smm", program_options={"patch": 4}, epochs=2))
    program = result.model.program
    assert result.metrics["trainable_parameters"] == sum(
        p.numel() for p in result.model.parameters() if p.requires_grad
    )
    assert program.theta.abs().sum() > 0  # the pattern trained
    assert result.config["program"]["generator_parameters"] > 0
    loaded, _ = load_artifact(result.out)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded.predict(x), result.model.predict(x))  # BN statistics saved too
