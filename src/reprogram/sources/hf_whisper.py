"""``hf:NAME`` — any Whisper checkpoint from the Hugging Face hub, or saved in a directory.

``hf:openai/whisper-small`` (a hub id, its default branch) or ``hf:/path/to/dir`` (a
directory written by ``save_pretrained``: ``config.json``, a ``*.safetensors`` file, the
tokenizer files) becomes the same source as the packaged
``whisper-tiny.en``: waveforms ``[B, T]`` of 16-kHz audio → Whisper's log-mel in torch →
the encoder on the window alone → one decoder step after the transcription prompt → logits
``[B, V]``, label names the tokenizer's token strings. ``features:hf:NAME`` reads its pooled
encoder (``#layers=all``, ``#pool=mean+std`` as for the packaged models).

Weights load from safetensors only (``use_safetensors=True``): a checkpoint that ships only
a pickled ``pytorch_model.bin`` is refused, since reprogram never unpickles files it did not
write. Downloads go to huggingface_hub's cache; when the hub's host does not resolve, only
checkpoints already in that cache load (``local_files_only``), and anything else is a clear
error that names the offline Whisper sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ReprogramError
from . import SOURCES
from .base import Source
from .hub import hub_unreachable, one_line
from .language import hf_language_source
from .whisper import (
    ASSETS,
    DEFAULT_WINDOW,
    ENGLISH_ONLY_VOCAB,
    WhisperSource,
    WhisperWindow,
    special_tokens,
    transcription_prompt,
)

if TYPE_CHECKING:  # transformers (the audio extra) is imported only where it is used
    from transformers import WhisperForConditionalGeneration

OFFLINE_WHISPERS = tuple(ASSETS)  # the packaged ones


def _offline_error(name: str, reason: str) -> ReprogramError:
    return ReprogramError(
        f"hf:{name} could not be loaded from the Hugging Face hub; this machine may be offline "
        f"(or the hub unreachable), and the checkpoint is not in the local hub cache. Sources "
        f"that work offline: minilm-l6, smollm2-135m (language models), "
        f"{', '.join(OFFLINE_WHISPERS)} (speech); a directory written by save_pretrained also "
        f"loads as hf:/path/to/dir. Reason: {reason}"
    )


def _check_local(path: Path) -> None:
    """Refuse a local directory that is not a safetensors Whisper checkpoint, saying why."""
    if not (path / "config.json").is_file():
        raise ReprogramError(
            f"hf:{path} is a directory without config.json; give a folder written by "
            f"WhisperForConditionalGeneration.save_pretrained (config, weights, tokenizer)."
        )
    if not any(path.glob("*.safetensors")):
        pickled = sorted(p.name for p in path.glob("*.bin"))
        extra = (
            f" It has {', '.join(pickled)}, a pickle, which reprogram does not load: convert "
            f"it once with model.save_pretrained(dir) in a recent transformers (it writes "
            f"safetensors)."
            if pickled
            else ""
        )
        raise ReprogramError(f"hf:{path} has no *.safetensors weights.{extra}")


def label_names_from(tokenizer: Any, vocab_size: int) -> list[str]:
    """One token string per model output (``V`` = ``vocab_size``); unnamed ids get ``<|id|>``."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    return [t if isinstance(t, str) else f"<|{i}|>" for i, t in enumerate(tokens)]


def load_hf_whisper(name: str) -> tuple[WhisperForConditionalGeneration, list[str]]:
    """``(WhisperForConditionalGeneration in eval mode, label names)`` of hub id or folder ``name``.

    Raises:
        ReprogramError: not a Whisper checkpoint, no safetensors weights, no tokenizer, or
            the hub unreachable and the checkpoint not cached.
    """
    try:
        from transformers import AutoTokenizer, WhisperForConditionalGeneration
    except ImportError:
        raise ReprogramError(
            "hf: sources need transformers: pip install reprogram[audio]."
        ) from None
    config, name, kwargs = read_config(name)
    if getattr(config, "model_type", None) != "whisper":
        raise ReprogramError(
            f"hf:{name} is a {getattr(config, 'model_type', 'unknown')!r} model; hf: sources "
            f"are Whisper speech recognisers (e.g. hf:openai/whisper-tiny). Image classifiers "
            f"load as timm:NAME."
        )
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            name, use_safetensors=True, dtype=torch.float32, attn_implementation="sdpa", **kwargs
        )
    except (OSError, ValueError) as exc:
        message = one_line(exc)
        if "safetensors" in str(exc).lower():
            raise ReprogramError(
                f"hf:{name} has no safetensors weights (reprogram does not unpickle "
                f"pytorch_model.bin files): {message}"
            ) from None
        raise _offline_error(name, message) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise ReprogramError(
            f"hf:{name} has no usable tokenizer, which names the outputs and gives the "
            f"transcription prompt ({one_line(exc)}); save it beside the model with "
            f"tokenizer.save_pretrained(dir)."
        ) from None
    return model.eval(), label_names_from(tokenizer, int(config.vocab_size))


def build_hf_whisper_source(name: str, window: int = DEFAULT_WINDOW) -> WhisperSource:
    """``hf:NAME`` as a frozen source of ``window``-sample waveforms → first-token logits."""
    name = name.strip()
    if not name:
        raise ReprogramError("hf: needs a name, e.g. hf:openai/whisper-tiny or hf:/path/to/dir.")
    model, vocab = load_hf_whisper(name)
    try:
        special = special_tokens(vocab)
    except ReprogramError:
        raise ReprogramError(
            f"hf:{name}: the tokenizer lacks Whisper's special tokens (<|startoftranscript|>, "
            f"<|notimestamps|>, <|endoftext|>); is it a Whisper tokenizer?"
        ) from None
    hp = {"vocab_size": len(vocab), **special}
    if hp["vocab_size"] != ENGLISH_ONLY_VOCAB and not {"en", "transcribe"} <= set(special):
        raise ReprogramError(
            f"hf:{name}: a multilingual Whisper needs <|en|> and <|transcribe|> in its "
            f"tokenizer for the transcription prompt."
        )
    module = WhisperWindow(model, transcription_prompt(hp))
    return WhisperSource(module, name=f"hf:{name}", window=window, label_names=vocab)


def read_config(name: str) -> tuple[Any, str, dict[str, Any]]:
    """``(config, name, loading options)`` of hub id or folder ``name``: a folder is checked
    (config and safetensors present) and named by its path; an unreachable hub means the
    local cache only. Raises a :class:`ReprogramError` saying why the config is unreadable."""
    from transformers import AutoConfig

    local = Path(name).expanduser()
    kwargs: dict[str, Any] = {}
    if local.is_dir():
        _check_local(local)
        name = str(local)
    elif hub_unreachable():
        kwargs["local_files_only"] = True
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        if local.is_dir():
            raise ReprogramError(f"hf:{name}: cannot read its config: {one_line(exc)}") from None
        raise _offline_error(name, one_line(exc)) from None
    return config, name, kwargs


@SOURCES.register(
    "hf:",
    prefix=True,
    help="NAME any Whisper or transformers language model on the Hugging Face hub (when "
    "online) or a save_pretrained folder; language models take #depth=N, #output=hidden",
)
def build_hf_source(name: str) -> Source:
    """Build ``hf:NAME``: a Whisper (waveforms ``[B, 16000]`` → first-token logits ``[B, V]``)
    or any other transformers model as a language source (:mod:`.language`)."""
    base, hash_, options = name.partition("#")
    base = base.strip()
    if not base:
        raise ReprogramError("hf: needs a name, e.g. hf:openai/whisper-tiny or hf:/path/to/dir.")
    config, path, kwargs = read_config(base)
    if getattr(config, "model_type", None) == "whisper":
        if hash_:
            raise ReprogramError(f"hf:{name}: Whisper sources take no #options.")
        return build_hf_whisper_source(base)
    return hf_language_source(path, config, kwargs, hash_ + options)


__all__ = ["build_hf_whisper_source", "label_names_from", "load_hf_whisper"]
