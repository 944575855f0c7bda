"""The sonify program: a series as a frequency-modulated tone, plus a learned waveform."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_waveform import _audio_source, _series, _sines_vs_squares
from torch import nn

from reprogram import FitConfig, ReprogrammedModel, fit
from reprogram.errors import ReprogramError
from reprogram.programs import build_program


def _program(length: int, window: int = 1600, **options: object) -> nn.Module:
    return build_program("sonify", dict(options), (1, length), (window,))[0]


def test_pitch_follows_the_z_normalised_series() -> None:
    prog = _program(5, window=9, f0=1000, octaves=1, clip=2)
    x = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])  # z: -√2 … +√2 over 9 resampled points
    freq = prog.pitch(x)[0]
    z = torch.linspace(-math.sqrt(2), math.sqrt(2), 9)
    torch.testing.assert_close(freq, 1000 * 2**z)
    # a constant series is a steady f0 tone; its valid part only, with trailing NaN ignored
    flat = prog.pitch(torch.tensor([[[3.0, 3.0, 3.0, float("nan"), float("nan")]]]))
    torch.testing.assert_close(flat, torch.full((1, 9), 1000.0))
    clipped = _program(5, window=9, f0=1000, octaves=1, clip=1).pitch(x)[0]
    assert float(clipped.max()) == pytest.approx(2000)
    assert float(clipped.min()) == pytest.approx(500)


def test_tone_has_the_pitch_of_the_series() -> None:
    """A constant series → a pure f0 tone; its spectrum peaks at f0, not elsewhere."""
    prog = _program(10, window=16000, f0=1000, clip=2)
    tone = prog.embed(torch.ones(1, 1, 10))[0]
    assert float(tone.abs().max()) == pytest.approx(0.1, abs=1e-3)
    spectrum = torch.fft.rfft(tone.double()).abs()
    assert int(spectrum.argmax()) == 1000  # 1-Hz bins over one second
    # a rising series: the pitch of the first half is lower than that of the second
    rising = prog.embed(torch.linspace(-1, 1, 10)[None, None])[0]
    first = torch.fft.rfft(rising[:8000].double()).abs().argmax() * 2  # 2-Hz bins
    second = torch.fft.rfft(rising[8000:].double()).abs().argmax() * 2
    assert first < 1000 < second


def test_theta_is_added_everywhere_and_gets_gradients() -> None:
    prog = _program(40, window=800)
    x = _series([40, 25], 40)
    out = prog(x)
    assert out.shape == (2, 800) and torch.isfinite(out).all()
    torch.testing.assert_close(out - prog.embed(x), prog.theta.expand(2, -1))
    out.square().sum().backward()
    assert prog.theta.grad is not None and prog.theta.grad.abs().sum() > 0
    assert torch.equal(prog.pattern(), prog.theta)
    assert prog.describe()["pitch_range_hz"] == pytest.approx([100.0, 6400.0])
    # [B, L] and [B, 1, L] are the same
    torch.testing.assert_close(prog(x[:, 0]), out)


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ReprogramError, match="univariate time series"):
        build_program("sonify", {}, (3, 28, 28), (16000,))
    with pytest.raises(ReprogramError, match="audio source"):
        build_program("sonify", {}, (1, 10), (3, 224, 224))
    with pytest.raises(ReprogramError, match="Nyquist"):
        _program(10, f0=4000, octaves=1, clip=3)
    with pytest.raises(ReprogramError, match="built for series"):
        _program(10)(torch.zeros(2, 1, 12))


def test_sonify_trains_and_reloads(tmp_path: Path) -> None:
    out = tmp_path / "sonify"
    config = FitConfig(
        source="tiny-audio", target="synthetic", program="sonify", mapping="linear",
        epochs=2, batch_size=4, lr=0.01, out=str(out), progress=False, plots=True,
        diagnostics=False,
    )  # fmt: skip
    result = fit(config, source=_audio_source(k=8), target=_sines_vs_squares())
    assert result.config["program"]["window"] == 1600
    assert result.metrics["trainable_parameters"] == 1600 + 2 * 8 + 2
    assert (out / "program.png").stat().st_size > 5_000
    again = ReprogrammedModel.from_pretrained(out, source=_audio_source(k=8))
    x = _sines_vs_squares().test.x
    assert torch.equal(again.predict(x), result.model.predict(x))


def test_raw_view_comes_first_and_is_declared() -> None:
    prog = _program(150, window=1600, raw=4)  # 600 samples → 640, then the 1600-sample tone
    assert prog.views == (640, 1600) and prog.window == 2240
    x = _series([150, 90], 150)
    out = prog(x)
    assert out.shape == (2, 2240)
    assert torch.equal(out[0, :150], x[0, 0])  # V2S's pad: the series itself …
    torch.testing.assert_close(out[0, 150:640], prog.raw.theta[150:])  # … then M ⊙ θ_raw
    torch.testing.assert_close(out[:, 640:], prog.tone(x) + prog.theta)
    assert prog.pattern().shape == (2240,) and prog.describe()["views"] == [640, 1600]
    assert _program(150).views is None
    with pytest.raises(ReprogramError, match="at least 1"):
        _program(150, raw=0.5)


def test_diff_view_is_the_first_difference_as_a_tone_of_its_own() -> None:
    prog = _program(150, window=1600, raw=4, diff=True)
    assert prog.views == (640, 1600, 1600) and prog.window == 3840
    x = _series([150, 90], 150)  # the second series ends in 60 NaN
    out = prog(x)
    assert out.shape == (2, 3840) and torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 640:2240], prog.tone(x) + prog.theta)
    torch.testing.assert_close(out[:, 2240:], prog.diff_tone(x) + prog.theta_diff)
    # the difference of a ramp is constant: a steady f0 tone, NaN padding or not
    ramp = torch.arange(150.0).expand(2, 1, 150).clone()
    ramp[1, 0, 100:] = float("nan")
    torch.testing.assert_close(prog.diff_tone(ramp), prog.tone(torch.ones(2, 1, 150)))
    # … while its own tone rises
    assert not torch.allclose(prog.tone(ramp[:1]), prog.tone(torch.ones(1, 1, 150)))
    out.square().sum().backward()
    assert prog.theta_diff.grad is not None and prog.theta_diff.grad.abs().sum() > 0
    assert prog.pattern().shape == (3840,)
    torch.testing.assert_close(prog.embed(x)[:, 2240:], prog.diff_tone(x))
    alone = _program(150, window=1600, diff=True)  # without raw: the two tones
    assert alone.views == (1600, 1600) and alone(x).shape == (2, 3200)
    with pytest.raises(ReprogramError, match="at least 3 points"):
        _program(2, window=1600, diff=True)
    with pytest.raises(ReprogramError, match="not a valid bool"):
        _program(150, diff="maybe")


def test_views_need_a_source_that_encodes_them_apart(tmp_path: Path) -> None:
    config = FitConfig(
        source="tiny-audio", target="synthetic", program="sonify", mapping="linear",
        program_options={"raw": 4}, epochs=1, batch_size=4, out=str(tmp_path / "r"),
        progress=False, plots=False, diagnostics=False,
    )  # fmt: skip
    with pytest.raises(ReprogramError, match="views of each input"):
        fit(config, source=_audio_source(k=8), target=_sines_vs_squares())


class _TinyWhisperConfig:
    d_model = 80


class _TinyWindow(nn.Module):
    """Stands in for WhisperWindow: log-mel frames as 'encoder states' [B, F, 80]."""

    def __init__(self) -> None:
        super().__init__()
        from reprogram.sources.audio import LogMel

        self.frontend = LogMel()
        self.whisper = nn.Module()
        self.whisper.config = _TinyWhisperConfig()  # type: ignore[assignment]
        self.scale = nn.Parameter(torch.ones(80))

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        return mel.transpose(1, 2) * self.scale


def test_whisper_feature_view_encodes_views_apart_and_reloads(tmp_path: Path) -> None:
    from reprogram.sources.features import _features
    from reprogram.sources.whisper import WhisperPooled

    pooled = WhisperPooled(_TinyWindow())  # type: ignore[arg-type]
    source = _features(_audio_source(k=8), pooled, 80)
    wave = torch.randn(2, 640 + 1600)
    viewed, dim = pooled.with_views((640, 1600))
    assert dim == 160
    feats = viewed(wave)
    torch.testing.assert_close(feats[:, :80], pooled(wave[:, :640]))
    torch.testing.assert_close(feats[:, 80:], pooled(wave[:, 640:]))
    with pytest.raises(ReprogramError, match="expects 2240-sample"):
        viewed(torch.randn(2, 1600))

    out = tmp_path / "views"
    config = FitConfig(
        source="tiny-audio", target="synthetic", program="sonify", mapping="linear",
        program_options={"raw": 4}, mapping_options={"init": "probe"}, epochs=1, batch_size=4,
        lr=0.01, out=str(out), progress=False, plots=False, diagnostics=False,
    )  # fmt: skip
    result = fit(config, source=source, target=_sines_vs_squares())
    assert result.model.source.num_classes == 160  # two pooled views side by side
    assert result.metrics["trainable_parameters"] == 640 + 1600 + 2 * 160 + 2
    again = ReprogrammedModel.from_pretrained(out, source=source)
    x = _sines_vs_squares().test.x
    assert torch.equal(again.predict(x), result.model.predict(x))
