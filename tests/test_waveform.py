"""The waveform program (Voice2Series), the V2S bound diagnostic, and mappings on 51,864 outputs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from reprogram import FitConfig, ReprogrammedModel, fit
from reprogram.data import Split, TargetData
from reprogram.diagnostics.v2s_bound import (
    V2SBoundCallback,
    random_directions,
    sliced_wasserstein,
    wasserstein_1d,
)
from reprogram.errors import ReprogramError
from reprogram.programs import build_program
from reprogram.programs.waveform import valid_lengths
from reprogram.sources.audio import LogMel
from reprogram.sources.base import Source

NAN = float("nan")


def _series(lengths: list[int], size: int, seed: int = 0) -> torch.Tensor:
    """Random series ``[N, 1, size]`` NaN-padded at the end to ``size``."""
    x = torch.randn(len(lengths), 1, size, generator=torch.Generator().manual_seed(seed))
    for i, n in enumerate(lengths):
        x[i, 0, n:] = NAN
    return x


def _program(length: int, window: int = 200, **options: object) -> nn.Module:
    return build_program("waveform", dict(options), (1, length), (window,))[0]


# ----------------------------------------------------------------------------- placement
def test_pad_start_places_series_and_masks_the_rest() -> None:
    x = _series([10, 7, 1], 10)
    prog = _program(10)
    assert prog.theta.shape == (200,) and 0.005 < float(prog.theta.detach().std()) < 0.02
    out = prog(x)
    assert out.shape == (3, 200) and torch.isfinite(out).all()
    assert valid_lengths(x[:, 0]).tolist() == [10, 7, 1]
    for i, n in enumerate([10, 7, 1]):
        assert torch.equal(out[i, :n], x[i, 0, :n])  # the series, untouched
        torch.testing.assert_close(out[i, n:], prog.theta[n:])  # M = 1 right after it
    # [B, L] input works the same as [B, 1, L]
    torch.testing.assert_close(prog(x[:, 0]), out)


def test_pad_centre_and_everywhere() -> None:
    x = _series([10, 6], 10)
    prog = _program(10, align="centre", mask="everywhere")
    out = prog(x)
    placed, inside = prog.place(x)
    assert torch.equal(placed[0, 95:105], x[0, 0]) and torch.equal(placed[1, 97:103], x[1, 0, :6])
    assert inside[1].sum() == 6 and inside[1, 97] == 1 and inside[1, 96] == 0
    torch.testing.assert_close(out, placed + prog.theta)  # program on every sample


def test_stretch_resamples_the_valid_part() -> None:
    x = torch.tensor([[[0.0, 1.0, 2.0, NAN]], [[4.0, 2.0, 0.0, 2.0]]])
    prog = _program(4, window=7, placement="stretch")
    assert prog.mask_mode == "everywhere"  # the series fills the window
    placed, _ = prog.place(x)
    torch.testing.assert_close(placed[0], torch.linspace(0, 2, 7))
    torch.testing.assert_close(placed[1], torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0]))
    part = _program(4, window=11, placement="stretch", stretch_to=5, align="centre")
    assert part.mask_mode == "outside"
    placed, inside = part.place(x)
    torch.testing.assert_close(placed[0, 3:8], torch.linspace(0, 2, 5))
    assert inside[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    out = part(x)
    torch.testing.assert_close(out[0, :3], part.theta[:3])


def test_normalize_is_z_norm_over_valid_samples() -> None:
    x = _series([50, 30], 50) * 7 + 3
    prog = _program(50, normalize=True, amplitude=0.2)
    placed, _ = prog.place(x)
    for i, n in enumerate([50, 30]):
        part = placed[i, :n]
        assert abs(float(part.mean())) < 1e-5
        assert abs(float(part.std(unbiased=False)) - 0.2) < 1e-4
        assert torch.count_nonzero(placed[i, n:]) == 0


def test_carrier_turns_the_series_into_the_envelope_of_a_tone() -> None:
    # a GunPoint-sized series stretched over one second at 16 kHz
    x = _series([150, 120], 150) * 5 + 2
    prog = _program(150, window=16000, placement="stretch", carrier=1000.0, amplitude=0.5)
    placed, _ = prog.place(x)
    # the stretched, z-normalised series is the envelope: demodulate with the same tone
    ref = _program(150, window=16000, placement="stretch", normalize=True, amplitude=1.0)
    z, _ = ref.place(x)
    envelope = (1 + z / 3).clamp_min(0)
    tone = torch.sin(2 * math.pi * 1000 / 16000 * torch.arange(16000.0))
    torch.testing.assert_close(placed, 0.5 * envelope * tone)
    # its energy sits around the carrier; the bare stretched series' lies below 200 Hz
    spectrum = torch.fft.rfft(placed[0]).abs() ** 2
    hz = torch.fft.rfftfreq(16000, 1 / 16000)
    assert float(spectrum[hz < 200].sum() / spectrum.sum()) < 0.01
    bare = torch.fft.rfft(z[0]).abs() ** 2
    assert float(bare[hz < 200].sum() / bare.sum()) > 0.9
    with pytest.raises(ReprogramError, match="below Nyquist"):
        _program(150, carrier=9000.0)


def test_pattern_and_describe() -> None:
    prog = _program(10)
    pattern = prog.pattern()
    assert pattern.shape == (200,) and torch.count_nonzero(pattern[:10]) == 0
    torch.testing.assert_close(pattern[10:], prog.theta[10:])
    assert prog.describe() == {
        "window": 200,
        "series_length": 10,
        "placement": "pad",
        "mask_mode": "outside",
    }


def test_fit_sizes_the_window_from_the_series_length() -> None:
    prog = _program(150, window=16000, fit=4)  # 600 samples → rounded up to 640
    assert prog.window == 640 and prog.theta.shape == (640,)
    x = _series([150, 90], 150)
    out = prog(x)
    assert out.shape == (2, 640)
    assert torch.equal(out[0, :150], x[0, 0])
    torch.testing.assert_close(out[0, 150:], prog.theta[150:])
    assert _program(10, window=16000, fit=1).window == 640  # never under two steps
    assert _program(1000, window=16000, fit=1.5, fit_step=100).window == 1500
    assert _program(10, window=16000).window == 16000  # off by default
    with pytest.raises(ReprogramError, match="fit sizes the window"):
        _program(10, placement="stretch", fit=2)
    with pytest.raises(ReprogramError, match="at least 1"):
        _program(10, fit=0.5)


def test_fit_window_trains_and_reloads(tmp_path: Path) -> None:
    """A fitted window goes through fit() and the artifact rebuilds the same window."""
    out = tmp_path / "fit"
    config = FitConfig(
        source="tiny-audio", target="synthetic", program="waveform", mapping="linear",
        program_options={"fit": 4}, epochs=1, batch_size=4, lr=0.01, out=str(out),
        progress=False, plots=False, diagnostics=False,
    )  # fmt: skip
    result = fit(config, source=_audio_source(k=8), target=_sines_vs_squares())
    assert result.config["program"]["window"] == 640  # 4 × 60 = 240, at least two 320-steps
    assert result.metrics["trainable_parameters"] == 640 + 2 * 8 + 2
    again = ReprogrammedModel.from_pretrained(out, source=_audio_source(k=8))
    x = _sines_vs_squares().test.x
    assert torch.equal(again.predict(x), result.model.predict(x))


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ReprogramError, match="univariate time series"):
        build_program("waveform", {}, (3, 28, 28), (16000,))
    with pytest.raises(ReprogramError, match="audio source"):
        build_program("waveform", {}, (1, 10), (3, 224, 224))
    with pytest.raises(ReprogramError, match="placement=stretch"):
        _program(300, window=200)
    with pytest.raises(ReprogramError, match="placement must be"):
        _program(10, placement="warp")
    with pytest.raises(ReprogramError, match="built for series"):
        _program(10)(torch.zeros(2, 1, 12))


def test_gradient_reaches_theta_at_init_through_log_mel() -> None:
    """θ ~ N(0, 0.01²) gets a gradient; θ = 0 would not (the clamp and floor are flat)."""
    torch.manual_seed(0)
    head = nn.Linear(80, 3)
    front = LogMel()

    def loss(prog: nn.Module) -> torch.Tensor:
        feats = front(prog(_series([40, 25], 40)))  # [B, 80, frames]
        return head(feats.mean(-1)).logsumexp(-1).sum()

    prog = _program(40, window=1600)
    loss(prog).backward()
    assert prog.theta.grad is not None and prog.theta.grad[40:].abs().sum() > 0
    zero = _program(40, window=1600, mask="everywhere")
    with torch.no_grad():
        zero.theta.zero_()
    silent = torch.zeros(2, 1, 40)
    front(zero(silent)).sum().backward()
    assert zero.theta.grad is not None and torch.count_nonzero(zero.theta.grad) == 0


# ----------------------------------------------------------------------------- sliced W1
def test_wasserstein_1d_matches_scipy_on_unequal_samples() -> None:
    from scipy.stats import wasserstein_distance

    gen = torch.Generator().manual_seed(0)
    u = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    v = 2 + torch.rand(12, 3, generator=gen, dtype=torch.float64)
    ours = wasserstein_1d(u, v)
    for j in range(3):
        assert abs(float(ours[j]) - wasserstein_distance(u[:, j], v[:, j])) < 1e-9
    assert float(wasserstein_1d(torch.tensor([[0.0], [1.0]]),
                                torch.tensor([[0.0], [0.0], [1.0], [1.0]]))[0]) == 0.0  # fmt: skip


def test_sliced_wasserstein_on_known_distributions() -> None:
    gen = torch.Generator().manual_seed(1)
    cloud = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    dirs = random_directions(5, 64, seed=0).double()
    assert torch.allclose(dirs.norm(dim=0), torch.ones(64, dtype=torch.float64))
    assert sliced_wasserstein(cloud, cloud, dirs) == 0.0
    # a shifted copy: every projection moves by |θ·s| exactly
    shift = torch.tensor([3.0, 0.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    expected = float((shift @ dirs).abs().mean())
    assert abs(sliced_wasserstein(cloud, cloud + shift, dirs) - expected) < 1e-9
    # two point masses at distance s: SW₁ → |s|·E|θ₁| = |s|·Γ(d/2) / (√π·Γ((d+1)/2))
    many = random_directions(5, 20000, seed=1)
    got = sliced_wasserstein(torch.zeros(3, 5, dtype=torch.float64), shift.expand(4, 5), many)
    exact = float(shift.norm()) * math.gamma(2.5) / (math.sqrt(math.pi) * math.gamma(3.0))
    assert abs(got - exact) < 0.02 * exact


# ----------------------------------------------------------------------------- fits
class _TinyAudio(nn.Module):
    """A small random 'speech model': log-mel → mean over time → linear to ``k`` outputs."""

    def __init__(self, k: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.front = LogMel()
        self.head = nn.Linear(80, k)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(k, 80, generator=gen))
            self.head.bias.zero_()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.front(wave).mean(-1))


def _audio_source(k: int = 51864, window: int = 1600) -> Source:
    return Source(
        _TinyAudio(k),
        name="tiny-audio",
        input_size=(window,),
        mean=None,
        std=None,
        label_names=[f"tok{i}" for i in range(k)],
    )


def _sines_vs_squares(n: int = 12, length: int = 60, seed: int = 0) -> TargetData:
    """Class 0: sines; class 1: square waves; a third of each NaN-padded to shorter lengths."""
    gen = torch.Generator().manual_seed(seed)

    def make(count: int) -> Split:
        y = torch.arange(count) % 2
        t = torch.arange(length) / length
        freq = 2 + 3 * torch.rand(count, 1, generator=gen)
        phase = torch.rand(count, 1, generator=gen) * 6.28
        wave = torch.sin(2 * math.pi * freq * t + phase)
        x = torch.where(y[:, None] == 1, torch.sign(wave), wave).unsqueeze(1).float()
        x = x + 0.05 * torch.randn(x.shape, generator=gen)
        for i in range(0, count, 3):
            x[i, 0, length - 10 :] = NAN
        return Split(x, y)

    return TargetData(
        name="sines-vs-squares", train=make(n), test=make(n), class_names=["sine", "square"],
        modality="series",
    )  # fmt: skip


@pytest.mark.parametrize("mapping", ["random", "flm", "ilm", "linear"])
def test_every_mapping_fits_on_51864_outputs(tmp_path: Path, mapping: str) -> None:
    config = FitConfig(
        source="tiny-audio", target="synthetic", program="waveform", mapping=mapping,
        epochs=2, batch_size=4, lr=0.01, out=str(tmp_path / mapping), progress=False,
        plots=mapping == "random", diagnostics=False,
    )  # fmt: skip
    result = fit(config, source=_audio_source(), target=_sines_vs_squares())
    m = result.metrics
    assert m["epochs"] == 2 and 0.0 <= m["test_accuracy"] <= 1.0
    assert math.isfinite(m["val_loss"])
    table = result.config["mapping"]["table"]
    assert len(table) == 2 and all(r["source_labels"][0].startswith("tok") for r in table)
    program_size = 1600
    expect = {"random": 0, "flm": 0, "ilm": 0, "linear": 2 * 51864 + 2}[mapping]
    assert m["trainable_parameters"] == program_size + expect
    if mapping == "random":
        assert (tmp_path / mapping / "program.png").stat().st_size > 5_000
        assert not (tmp_path / mapping / "bound.png").exists()  # diagnostics were off


@pytest.mark.integration
def test_whisper_tiny_fit_with_bound_diagnostic(tmp_path: Path) -> None:
    """The real whisper-tiny.en on a tiny synthetic task: 2 epochs, bound measured each epoch."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path / "v2s"
    config = FitConfig(
        source="whisper-tiny.en", target="synthetic", program="waveform", mapping="random",
        epochs=2, batch_size=8, lr=0.01, out=str(out), progress=False,
    )  # fmt: skip
    result = fit(config, target=_sines_vs_squares(n=10))
    m = result.metrics
    rows = [r for r in m["history"] if r["epoch"] >= 1]
    assert len(rows) == 2
    for r in rows:
        assert r["v2s_sw_distance"] > 0
        assert r["v2s_bound_term"] == pytest.approx(2 * math.sqrt(2) * r["v2s_sw_distance"])
    assert m["callbacks"]["v2s_bound"]["projections"] == 128
    assert m["trainable_parameters"] == 16000
    assert (out / "bound.png").stat().st_size > 5_000
    assert (out / "program.png").stat().st_size > 5_000
    assert result.config["source"]["mean"] is None
    # the artifact rebuilds the same model from its files alone
    again = ReprogrammedModel.from_pretrained(out)
    x = _sines_vs_squares(n=10).test.x
    assert torch.equal(again.predict(x), result.model.predict(x))


def test_bound_callback_reports_missing_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    import reprogram.diagnostics.v2s_bound as vb

    monkeypatch.setattr(vb, "espeak_available", lambda: False)
    cb = V2SBoundCallback()

    class _Trainer:
        model = type("M", (), {"source": _audio_source(10)})()
        is_main = True
        config = FitConfig(progress=False)

    cb.on_fit_start(_Trainer())  # type: ignore[arg-type]
    record: dict[str, object] = {}
    cb.on_epoch_end(_Trainer(), 1, record)  # type: ignore[arg-type]
    assert record == {} and "espeak-ng" in cb.state_dict()["skipped"]


def test_program_plot_finds_the_front_end_and_the_last_view() -> None:
    """program.png's log-mel column reads the source's own LogMel, on the last view only."""
    from reprogram.diagnostics.waveform_plot import _front_end, _last_view

    source = _audio_source(k=4)
    assert isinstance(_front_end(source), LogMel)
    assert _front_end(nn.Sequential(nn.Linear(2, 2))) is None
    wave = torch.arange(10.0)[None]
    assert torch.equal(_last_view(wave, (4, 6)), wave[:, 4:])
    assert torch.equal(_last_view(wave, None), wave)
