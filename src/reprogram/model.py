"""``ReprogrammedModel``: program → frozen source → mapping, built and saved without the trainer.

PEFT-like use in your own training loop::

    model = ReprogrammedModel.build("efficientnet-lite0", input_shape=(1, 28, 28),
                                    class_names=names, program="full", mapping="linear")
    ...  # train model.program / model.mapping parameters yourself
    model.save_pretrained("runs/mine")
    model = ReprogrammedModel.from_pretrained("runs/mine")
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .adapter import Adapted
from .artifact import (
    CONFIG,
    FORMAT,
    PROGRAM,
    load_state,
    read_json,
    register_loader,
    save_program,
    versions,
    write_json,
)
from .config import FitConfig, settings_of
from .data.checks import check_input_shape
from .errors import ArtifactError, DataError, ReprogramError
from .mappings import MAPPINGS, build_mapping
from .mappings.base import Mapping
from .output_cache import OutputCache, cache_limit
from .programs import PROGRAMS, build_program, resolve_program
from .registry import config_to_dict
from .sources import TRUST_ENV, build_source, needs_consent, trusted
from .sources.base import Source
from .sources.features import with_program_views


class ReprogrammedModel(Adapted):
    """A frozen source model between a trainable program and a label mapping.

    Args:
        source: the frozen model (its parameters never get gradients; eval mode always): an
            image classifier, a speech recogniser or a language model.
        program: target inputs → what the source reads: images ``[B, C_t, H_t, W_t]`` →
            source pixels ``[B, C_s, S, S]``; series ``[B, 1, L]`` → audio or images; token
            ids ``[B, L]`` (``0`` padding) → input embeddings with their mask.
        mapping: ``[B, K_s]`` source outputs (logits, or a language model's pooled states)
            → ``[B, K_t]`` target scores (values, for a regression target).
    """

    #: the program/mapping/target/seed settings, set by :meth:`build` and the artifact loader
    #: (absent otherwise: :meth:`save_pretrained` reads it with ``getattr``)
    spec: dict[str, Any]

    def __init__(self, source: Source, program: nn.Module, mapping: Mapping) -> None:
        super().__init__()
        self.source = source
        self.program = program
        self.mapping = mapping
        for p in self.source.parameters():
            p.requires_grad_(False)
        #: source outputs per example, for a program that trains nothing and opts in
        #: (``caches_source_outputs``); None otherwise
        self.output_cache: OutputCache | None = None
        frozen = not any(p.requires_grad for p in program.parameters())
        if getattr(program, "caches_source_outputs", False) and frozen:
            limit = cache_limit()
            self.output_cache = OutputCache(limit) if limit > 0 else None

    def train(self, mode: bool = True) -> ReprogrammedModel:
        """Train the program and mapping; the source stays in eval mode regardless."""
        super().train(mode)
        self.source.train(False)
        return self

    def penalty(self) -> torch.Tensor | None:
        """The sum of the program's and the mapping's ``penalty()`` terms, where they have one
        (e.g. ``dictionary``'s ``l1``); ``None`` when neither asks for one."""
        terms = [
            term
            for part in (self.program, self.mapping)
            if (hook := getattr(part, "penalty", None)) is not None and (term := hook()) is not None
        ]
        return torch.stack(terms).sum() if terms else None

    def row_groups(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """The program's sub-batches of a training batch, where it offers them (a token
        program: rows of similar length); the source runs in eval mode and the mappings read
        each row alone, so the rows do not interact. None for a source that only answers
        queries: each pass would be one more round of requests to it."""
        hook = getattr(self.program, "row_groups", None)
        if hook is None or getattr(self.source, "access", "weights") != "weights":
            return None
        return hook(x)

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Source outputs ``[B, K_s]`` of the reprogrammed target inputs ``x`` ``[B, ...]``
        (from :attr:`output_cache` for the examples it has seen, when there is one)."""
        if self.output_cache is not None:
            return self.output_cache(x, lambda rows: self.source(self.program(rows)))
        return self.source(self.program(x))

    def scores(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Target scores ``[B, K_t]`` from source ``logits`` of the target inputs ``x``.

        The mapping reads ``x`` too when it has side features (``reads_inputs``).
        """
        return self.mapping(logits, x) if self.mapping.reads_inputs else self.mapping(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Target scores ``[B, K_t]`` for target inputs ``x`` ``[B, ...]`` (images
        ``[B, C_t, H_t, W_t]``, series ``[B, 1, L]``, token ids ``[B, L]``)."""
        return self.scores(self.source_logits(x), x)

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """What training changes: program and mapping parameters and persistent buffers."""
        state = self.state_dict()
        return OrderedDict(
            (k, v) for k, v in state.items() if k.startswith(("program.", "mapping."))
        )

    def trainable_parameters(self) -> int:
        """Number of adapted scalars: program + mapping, trained by gradient or fitted in
        closed form (a ``head=ridge`` layer)."""
        adapted = (self.program.parameters(), self.mapping.parameters())
        return sum(p.numel() for group in adapted for p in group)

    def source_parameters(self) -> int:
        """Number of scalars in the frozen source model."""
        return self.source.num_parameters

    def print_trainable_parameters(self) -> None:
        """Print trained vs frozen parameter counts, as PEFT does."""
        trained, frozen = self.trainable_parameters(), self.source_parameters()
        total = trained + frozen
        print(
            f"trainable params: {trained:,} || all params: {total:,} || "
            f"trainable%: {100 * trained / max(total, 1):.4f}"
        )

    def scores_untrained(self) -> bool:
        """The mapping's table is fixed when built (``semantic``, ``verbalizer``, ``random``)."""
        return bool(self.mapping.scores_untrained)

    def before_box(self) -> list[nn.Parameter]:
        """The program's parameters: they are what reaches the source."""
        return list(self.program.parameters())

    def finalize_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Record the mapping table (which source labels serve each class) in ``config``."""
        config["mapping"] = {
            **config["mapping"],
            "table": self.mapping.table(self.source.label_names),
        }
        return config

    @classmethod
    def build(
        cls,
        source: str | Source,
        input_shape: tuple[int, ...],
        class_names: list[str],
        program: str = "auto",
        mapping: str = "linear",
        program_options: dict[str, Any] | None = None,
        mapping_options: dict[str, Any] | None = None,
        seed: int = 0,
        vocabulary: list[str] | None = None,
    ) -> ReprogrammedModel:
        """A fresh reprogrammed model around ``source`` (a name or a :class:`Source`), for
        training in your own loop; :meth:`save_pretrained` writes it as an artifact.

        Args:
            input_shape: one target example's shape (``(C, H, W)`` images, ``(1, L)`` series,
                ``(L,)`` token ids of sequences of at most ``L`` symbols).
            class_names: the target's classes (their number sizes the mapping).
            vocabulary: a sequence target's symbols (token programs spell them; recorded, so
                a saved model reads text through :func:`reprogram.encode_sequences` and
                ``reprogram predict``).
        """
        src = build_source(source) if isinstance(source, str) else source
        config = FitConfig(
            source=src.name,
            program=program,
            mapping=mapping,
            program_options=dict(program_options or {}),
            mapping_options=dict(mapping_options or {}),
            seed=seed,
            progress=False,
            plots=False,
        )
        model, program_info, mapping_info = build_model(
            config, src, tuple(input_shape), len(class_names), list(class_names), vocabulary
        )
        model.spec = {
            "program": program_info,
            "mapping": mapping_info,
            "target": {
                "input_shape": list(input_shape),
                "class_names": list(class_names),
                # a sequence model records its symbols: predict and encode_sequences read them
                **({"modality": "sequence", "vocabulary": list(vocabulary)}
                   if vocabulary is not None else {}),
            },
            "seed": seed,
        }
        return model

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``program.safetensors`` (the trained tensors only) into
        ``directory``; :meth:`from_pretrained` and :func:`reprogram.load_artifact` read it.

        Raises:
            ReprogramError: the model was not made by :meth:`build` or loaded from an artifact
                (its program and mapping settings are unknown).
        """
        spec = getattr(self, "spec", None)
        if spec is None:
            raise ReprogramError(
                "save_pretrained needs the model's settings: make it with "
                "ReprogrammedModel.build(...) or load it with from_pretrained(...)."
            )
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "source": self.source.spec(),
            **spec,
            "versions": versions(),
        }
        write_json(out / CONFIG, self.finalize_config(config))
        save_program(out / PROGRAM, self)
        return out

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, source: Source | None = None
    ) -> ReprogrammedModel:
        """Rebuild a trained model from a ``fit`` artifact (refuses a different source model).

        ``source`` is needed only for a source that is not buildable by name (a user module).
        """
        directory = Path(directory)
        config = read_json(directory / CONFIG, "the config")
        if not isinstance(config, dict) or config.get("format", FORMAT) != FORMAT:
            raise ArtifactError(
                f"{directory} is not a reprogrammed model's artifact (a baseline's?); load it "
                f"with reprogram.load_artifact."
            )
        return load_reprogrammed(directory, config, source)[0]


def _has_field(config: type | None, name: str) -> bool:
    """Whether a component's config dataclass has option ``name``."""
    return config is not None and any(f.name == name for f in dataclasses.fields(config))


def bind_source(program: nn.Module, source: Source) -> None:
    """Let a program that reads the source itself (a token program: its embeddings and
    tokenizer) do so, before any trained weights are loaded into it."""
    bind = getattr(program, "bind_source", None)
    if bind is not None:
        bind(source)


def build_model(
    config: FitConfig,
    source: Source,
    input_shape: tuple[int, ...],
    num_classes: int,
    class_names: list[str] | None = None,
    vocabulary: list[str] | None = None,
    task: str = "classification",
) -> tuple[ReprogrammedModel, dict[str, Any], dict[str, Any]]:
    """Build program and mapping around ``source``; returns the model and their resolved configs.

    ``task`` ``"regression"`` refuses a mapping that scores classes (it cannot answer a
    value).

    ``class_names`` (the target's) go with the source's label names to mappings that choose
    by name (``semantic``); ``vocabulary`` (a sequence target's symbols) goes to programs
    that spell them. The global RNG is seeded with ``config.seed`` first, so that the
    layers initialised from it (a mapping's linear layers, a program's) are the same in every
    process (torch draws its default seed at random at start-up).
    """
    torch.manual_seed(config.seed)
    program_name = resolve_program(config.program, input_shape, source.input_size)
    program_options = dict(config.program_options)
    program_config = PROGRAMS.get(program_name).config
    if vocabulary is not None and _has_field(program_config, "vocabulary"):
        program_options.setdefault("vocabulary", "".join(vocabulary))
    if _has_field(program_config, "seed"):
        program_options.setdefault("seed", config.seed)
    program, program_cfg = build_program(
        program_name, program_options, input_shape, source.input_size
    )
    bind_source(program, source)
    source = with_program_views(source, program)  # a program's views: V·d features
    mapping_options = dict(config.mapping_options)
    entry = MAPPINGS.get(config.mapping)
    if _has_field(entry.config, "seed"):
        mapping_options.setdefault("seed", config.seed)
    positions = getattr(program, "output_positions", None)
    if positions and not _has_field(entry.config, "positions"):
        raise ReprogramError(
            f"program {program_name!r} makes the source answer one state per patch; read them "
            f"with --mapping horizon (not {config.mapping!r}), or use --recipe time-llm."
        )
    if positions:
        given = mapping_options.get("positions")
        if given is not None and str(given) != str(positions):
            raise ReprogramError(
                f"--mapping-opt positions={given}, but the program makes {positions} patch "
                "states; leave positions out (it is set from the program)."
            )
        mapping_options["positions"] = int(positions)
    features = getattr(source, "outputs", "logits") == "features"
    MAPPINGS.build_config(config.mapping, mapping_options)  # bad options: their own error
    try:
        mapping, mapping_cfg = build_mapping(
            config.mapping, mapping_options, source.num_classes, num_classes
        )
    except ReprogramError:
        if not features:
            raise
        mapping = None  # e.g. too few "labels" for random's many-to-one: same advice below
    if features and (mapping is None or mapping.reads_labels):
        raise ReprogramError(
            f"mapping {config.mapping!r} picks source labels by their scores, but source "
            f"{source.name!r} answers features (hidden states), which are not labels. Use "
            f"--mapping linear with it (add --mapping-opt init=probe to start from a linear "
            f"probe), or a source that answers labels: "
            + (
                "drop the features: prefix."
                if source.name.startswith("features:")
                else "a causal language model's logits (smollm2-135m without "
                "#output=hidden), or an image or speech model's classes."
            )
        )
    assert mapping is not None  # None only for a features: source, refused just above
    if task == "regression" and not mapping.predicts_values:
        raise ReprogramError(
            f"mapping {config.mapping!r} scores classes from the source's label scores; a "
            "regression target needs a value. Use --mapping linear (add --mapping-opt "
            "init=probe to start from a ridge fit)."
        )
    mapping.bind_inputs(tuple(input_shape))  # side features of the raw target, if any
    if class_names is not None:
        texts = getattr(source, "label_texts", None) or source.label_names
        mapping.bind_names(list(texts), list(class_names))
    model = ReprogrammedModel(source, program, mapping)
    program_info = {"name": program_name, "options": config_to_dict(program_cfg)}
    program_info.update(getattr(program, "describe", dict)())
    mapping_info = {"name": config.mapping, "options": config_to_dict(mapping_cfg)}
    return model, program_info, mapping_info


def check_source(config: dict[str, Any], source: Source | None, directory: Path) -> Source:
    """The source an artifact was trained on: built by name (or ``source``), fingerprint checked.

    Raises:
        ArtifactError: the config lacks the source fields, or the weights differ.
    """
    try:
        src_name, fingerprint = config["source"]["name"], str(config["source"]["fingerprint"])
    except (KeyError, TypeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{directory / CONFIG} {what}; it is not ours.") from None
    if source is None:
        if needs_consent(src_name) and not trusted(src_name):
            where = "a file" if src_name.lower().startswith("onnx:") else "a remote endpoint"
            raise ArtifactError(
                f"{directory / CONFIG} names source {src_name!r}, {where}. Following it would "
                f"send your inputs (and an API token, if set) there, so an artifact alone may "
                f"not choose it. If you trust it, name it yourself: --source {src_name} (eval, "
                f"predict), ${TRUST_ENV}={src_name} (comma-separated; serve), or source= in "
                f"Python."
            )
        source = build_source(src_name)
    if not _same_model(source, fingerprint, config["source"].get("access")):
        raise ArtifactError(
            f"this artifact was trained on source {src_name!r} with weights "
            f"{fingerprint[:12]}…, but the source given has weights "
            f"{source.fingerprint()[:12]}… ({source.name}). A program only works with the exact "
            f"model it was trained for: load it with that model."
        )
    return source


def _same_model(source: Source, fingerprint: str, access: object) -> bool:
    """Whether ``source`` is the model an artifact recorded as ``fingerprint``: the same
    weights, and as a black box (``access == "query"``) if it was trained through queries.

    Black boxes of the same weights answer alike whichever route they take (``query:NAME`` in
    process, or the model served over HTTP, whose fingerprint is the server's), so a run
    trained through one loads through the other.
    """
    given = source.fingerprint()
    if given == fingerprint:
        return True
    both_queried = access == "query" and getattr(source, "access", None) == "query"
    return both_queried and given.removeprefix("query:") == fingerprint.removeprefix("query:")


def target_fields(config: dict[str, Any], directory: Path) -> tuple[tuple[int, ...], int]:
    """``(input_shape, number of classes)`` recorded in an artifact's ``config.json``, checked
    (a shape of whole, positive, bounded sizes; a non-empty list of class names) before any
    module is sized by them; ArtifactError otherwise."""
    where = directory / CONFIG
    try:
        target = config["target"]
        shape, names = target["input_shape"], target["class_names"]
    except (KeyError, TypeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{where} {what}; it is not ours.") from None
    try:
        input_shape = check_input_shape(shape, f"{where}, target")
    except DataError as exc:
        raise ArtifactError(
            f"{exc} The file is damaged or was edited: retrain the model."
        ) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ArtifactError(
            f"{where}: target class_names must be a non-empty list of strings; the file is "
            "damaged or was edited: retrain the model."
        )
    return input_shape, len(names)


@register_loader(FORMAT)
def load_reprogrammed(
    directory: Path, config: dict[str, Any], source: Source | None = None
) -> tuple[ReprogrammedModel, dict[str, Any]]:
    """Rebuild a ``fit`` artifact: program and mapping from their recorded settings, the
    source by name (or ``source``) with its weight fingerprint checked, then the tensors."""
    try:
        prog_cfg, map_cfg = config["program"], config["mapping"]
        for part in (prog_cfg, map_cfg):
            if not isinstance(part["name"], str) or not isinstance(part["options"], dict):
                raise TypeError("program and mapping need a name and options")
    except (KeyError, TypeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{directory / CONFIG} {what}; it is not ours.") from None
    input_shape, num_classes = target_fields(config, directory)
    source = check_source(config, source, directory)
    program, _ = build_program(
        prog_cfg["name"], prog_cfg["options"], input_shape, source.input_size
    )
    bind_source(program, source)
    source = with_program_views(source, program)
    mapping, _ = build_mapping(map_cfg["name"], map_cfg["options"], source.num_classes, num_classes)
    mapping.bind_inputs(input_shape)  # side features of the raw target, if any
    model = ReprogrammedModel(source, program, mapping)
    load_state(directory, model, f"{prog_cfg['name']} + {map_cfg['name']}")
    model.spec = settings_of(config)
    return model, config
