"""``resize-pad`` with ``learn_scale=true``: AutoVP's trainable input scale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from reprogram import fit, load_artifact
from reprogram.programs import build_program
from reprogram.programs.resize_pad import ResizePadProgram, ScaledPadProgram


def test_the_scale_starts_at_inner_size_and_takes_a_gradient() -> None:
    plain, _ = build_program("resize-pad", {}, (1, 8, 8), (3, 32, 32))
    assert isinstance(plain, ResizePadProgram)  # the default is unchanged
    program, _ = build_program("resize-pad", {"learn_scale": "true"}, (1, 8, 8), (3, 32, 32))
    assert isinstance(program, ScaledPadProgram)
    assert abs(float(program.scale().detach()) - 24 / 32) < 1e-6  # inner 0.75 of the canvas
    x = torch.rand(2, 1, 8, 8)
    out = program(x)
    assert out.shape == (2, 3, 32, 32)
    # the corners are prompt only (sigmoid(0) = 0.5); the centre is image only
    assert torch.allclose(out[:, :, 0, 0], torch.full((2, 3), 0.5))
    cover = program.coverage(x)[0, 0].detach()
    assert cover[16, 16] == 1.0 and cover[0, 0] == 0.0
    assert abs(float(cover.sum()) - 24 * 24) < 1.0  # the image covers its 24 × 24 pixels
    (out * torch.linspace(0, 1, 32)).sum().backward()
    assert program.scale_logit.grad is not None and program.scale_logit.grad.abs() > 0
    n = sum(p.numel() for p in program.parameters())
    assert n == 3 * 32 * 32 + 1
    info = program.describe()
    assert info["learn_scale"] is True and info["scale"] == 0.75


def test_a_fit_trains_the_scale_and_the_artifact_reproduces_it(tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path, program_options={"learn_scale": "true"}, epochs=2, lr=0.05))
    program = result.model.program
    assert abs(float(program.scale().detach()) - 0.75) > 1e-4  # it moved
    loaded, _ = load_artifact(result.out)
    assert torch.equal(loaded.program.scale_logit, program.scale_logit)
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(loaded.predict(x), result.model.predict(x))


def test_learn_scale_takes_a_boolean() -> None:
    from reprogram.errors import ReprogramError

    with pytest.raises(ReprogramError, match="learn_scale"):
        build_program("resize-pad", {"learn_scale": "maybe"}, (1, 8, 8), (3, 32, 32))
