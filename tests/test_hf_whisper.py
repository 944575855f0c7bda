"""``hf:NAME`` sources: a tiny Whisper written by save_pretrained loads like the packaged ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reprogram.errors import ReprogramError
from reprogram.sources import build_source, hf_whisper

SPECIAL = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|transcribe|>",
    "<|notimestamps|>",
]
WORDS = ["!", "a", "b", "c", "Ġseven", "Ġyes", "Ġno"]


def _tiny_whisper(folder: Path) -> list[str]:
    """Save a random 1-layer multilingual-style Whisper and its tokenizer; return the vocab."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer

    vocab = WORDS + SPECIAL
    ids = {t: i for i, t in enumerate(vocab)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(ids))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = WhisperTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.save_pretrained(str(folder))
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        d_model=16,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=16,
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(str(folder))
    return vocab


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("hf") / "tiny-whisper"
    return folder, _tiny_whisper(folder)


def test_hf_folder_loads_as_a_whisper_source(tiny_dir: tuple[Path, list[str]]) -> None:
    folder, vocab = tiny_dir
    source = build_source(f"hf:{folder}")
    assert source.name == f"hf:{folder}"
    assert source.label_names == vocab
    ids = {t: i for i, t in enumerate(vocab)}
    expected = [ids[t] for t in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>")]
    assert source.module.prompt.tolist() == [*expected, ids["<|notimestamps|>"]]
    assert source.input_size == (16000,)
    x = (0.05 * torch.randn(2, 16000)).requires_grad_()
    logits = source(x)
    assert logits.shape == (2, len(vocab))
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in source.parameters())  # the source stays frozen


def test_features_view_of_an_hf_whisper(tiny_dir: tuple[Path, list[str]]) -> None:
    folder, _ = tiny_dir
    last = build_source(f"features:hf:{folder}")
    every = build_source(f"features:hf:{folder}#layers=all#pool=mean+std")
    x = 0.05 * torch.randn(3, 16000)
    assert last(x).shape == (3, 16)
    assert every(x).shape == (3, 2 * 2 * 16)


def test_the_hf_source_matches_transformers_on_the_same_encoder_states(
    tiny_dir: tuple[Path, list[str]],
) -> None:
    """Our window path's decoder step equals transformers' forward given the same states."""
    folder, _ = tiny_dir
    source = build_source(f"hf:{folder}")
    window = source.module
    x = 0.05 * torch.randn(2, 16000)
    with torch.no_grad():
        ours = source(x)
        states = window.encode(window.frontend(x))
        tokens = window.prompt.expand(2, -1)
        out = window.whisper(encoder_outputs=(states,), decoder_input_ids=tokens)
    torch.testing.assert_close(ours, out.logits[:, -1], rtol=1e-5, atol=1e-5)


def test_a_pickled_only_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (folder / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(ReprogramError, match=r"pytorch_model\.bin, a pickle"):
        build_source(f"hf:{folder}")


def test_a_folder_without_config_and_a_broken_language_model_are_clear_errors(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReprogramError, match=r"without config\.json"):
        build_source(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    # not a Whisper: read as a language model, whose empty weights are a clear error
    with pytest.raises(ReprogramError, match="could not be loaded as a language model"):
        build_source(f"hf:{tmp_path}")


def test_an_uncached_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_whisper, "hub_unreachable", lambda: "cannot resolve (test)")
    with pytest.raises(ReprogramError, match=r"whisper-tiny\.en, whisper-base"):
        build_source("hf:nobody/no-such-whisper-reprogram-test")
