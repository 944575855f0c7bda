"""A language model answered as a black box: embeddings in, features or logits out, counted.

``query:minilm-l6`` (or any language source trained with ``--optimizer rgf|spsa-gc``) is the
setting of Black-Box Tuning (Sun et al., ICML 2022) and of R2DL's query-only variant: the
model's *input side* is public (its tokenizer and input-embedding table, as for any open-weight
model served behind an API), the transformer itself only answers queries. A token program
(``soft-prompt``, ``dictionary``) reads the public side to build its inputs; every input row it
sends through the body is one query, counted, cached, budgeted and journalled exactly as an
image sent to a :class:`~reprogram.blackbox.source.BlackBoxSource` is; its parameters get
zeroth-order estimates, the mapping after the box exact gradients (``hybrid``).

A query is one row: the embeddings ``[T, D]`` with the attention mask as one more column
(float32 ``[T, D + 1]``). The answer is what the white box would give: pooled hidden states
``[K = D]`` (``features``) or next-token logits ``[K = V]`` (``logits``), returned as they are
(they are no distribution, so the answer is checked for shape and finite values only).

The same model behind ``reprogram serve --source NAME`` is queried over HTTP
(``http://HOST:PORT``): the server answers rows sent as float32 ``[B, T, D + 1]`` and hands
out its public side at ``GET /language`` (:func:`public_blob`: the input-embedding table and
the tokenizer's files in one safetensors blob). :func:`fetch_public` downloads it once into the
user cache (checked against the server's fingerprint), so a client needs neither the model's
weights nor its name; :func:`remote_language` checks a public side against the server's.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ReprogramError
from ..sources.base import Source
from ..sources.cache import atomic_write_bytes, cache_dir
from ..sources.language import (
    LanguageSide,
    LanguageSource,
    PublicLanguage,
    TokenInputs,
    check_token_inputs,
)
from .protocol import EndpointError, EndpointInfo, QueryEndpoint
from .source import BlackBoxSource, query_source
from .wire import LANGUAGE, check_outputs

#: What :func:`public_blob` writes in its metadata's ``format``.
PUBLIC_FORMAT = "reprogram.language-public/1"
#: A tokenizer file's name in a public side: a plain name, no folder, nothing hidden.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Answer-cache budget in float32 values (128 MiB): a logits source (49,152 values a row)
#: keeps about 680 rows, a feature source (384) the default 4,096.
CACHE_VALUES = 2**25


def language_info(source: LanguageSource, public: bool = True) -> EndpointInfo:
    """What a served language model says about itself (``/health``): ``kind="language"``,
    ``input_shape`` ``(max_positions, D)``, ``K`` outputs, and its public side's name and
    (``public``) fingerprint."""
    return EndpointInfo(
        name=source.name,
        input_shape=tuple(source.input_size),
        num_classes=source.num_classes,
        label_names=tuple(source.label_names),
        fingerprint=source.fingerprint(),
        kind=LANGUAGE,
        output=source.outputs,
        language=source.name,
        embedding_fingerprint=source.embedding_fingerprint() if public else "",
    )


def answer_rows(source: LanguageSource, rows: torch.Tensor) -> torch.Tensor:
    """Features or logits ``[B, K]`` of ``source`` for packed rows ``[B, T, D + 1]``."""
    with torch.inference_mode():
        return source(TokenInputs(rows[..., :-1], rows[..., -1])).float()


def language_model(source: Source) -> tuple[Any, EndpointInfo]:
    """``model_fn`` (rows ``[B, T, D + 1]`` → ``[B, K]``) and ``info`` to serve the language
    model ``source`` with :func:`reprogram.blackbox.app.create_app` (``reprogram serve
    --source NAME``); ReprogramError for any other source."""
    if not isinstance(source, LanguageSource):
        raise ReprogramError(
            f"{source.name} is no language model; serve it with source_model() instead."
        )
    language = source
    language.eval()
    return (lambda rows: answer_rows(language, rows)), language_info(language)


def public_blob(source: LanguageSource) -> bytes:
    """``source``'s public side as one safetensors blob (what ``GET /language`` answers).

    Returns:
        safetensors bytes: tensor ``embeddings`` float32 ``[V_s, D]``; metadata ``format``,
        ``name``, ``max_positions``, ``output``, ``num_classes``, and ``tokenizer``: a JSON
        object of the files the tokenizer's ``save_pretrained`` writes (name → base64).
    """
    from safetensors.torch import save

    with tempfile.TemporaryDirectory() as tmp:
        source.tokenizer.save_pretrained(tmp)
        files = {
            f.name: base64.b64encode(f.read_bytes()).decode("ascii")
            for f in sorted(Path(tmp).iterdir())
            if f.is_file()
        }
    metadata = {
        "format": PUBLIC_FORMAT,
        "name": source.name,
        "max_positions": str(source.max_positions),
        "output": source.output,
        "num_classes": str(source.num_classes),
        "tokenizer": json.dumps(files),
    }
    table = source.embedding_matrix().detach().float().cpu().contiguous()
    return save({"embeddings": table}, metadata=metadata)


def public_from_blob(blob: bytes, folder: Path) -> PublicLanguage:
    """The :class:`PublicLanguage` packed in ``blob`` by :func:`public_blob`; its tokenizer's
    files are written into ``folder`` (plain file names only) and read back from there.

    Raises:
        ReprogramError: the blob is not a public side (what was wrong is named).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        size = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8 : 8 + size])["__metadata__"]
        if metadata.get("format") != PUBLIC_FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}, not {PUBLIC_FORMAT!r}")
        files = json.loads(metadata["tokenizer"])
        if not isinstance(files, dict) or not files:
            raise ValueError("no tokenizer files")
        contents = {}
        for name, data in files.items():
            if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
                raise ValueError(f"tokenizer file name {name!r} is no plain file name")
            contents[name] = base64.b64decode(data, validate=True)
        table = load(bytes(blob))["embeddings"]
        positions, classes = int(metadata["max_positions"]), int(metadata["num_classes"])
        name, output = str(metadata["name"]), str(metadata["output"])
    except (ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise ReprogramError(
            f"the language model's public side (GET /language) is malformed "
            f"({type(exc).__name__}: {exc}); is the server a reprogram serve of the same "
            "version? Name the model with #language=NAME to build it here instead."
        ) from None
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    for file, data in contents.items():
        path = folder / file
        if not path.is_file() or path.read_bytes() != data:  # a cached build writes nothing
            atomic_write_bytes(path, data)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))  # local files only
    return PublicLanguage(table, tokenizer, name=name, max_positions=positions, output=output,
                          num_classes=classes)


def fetch_public(endpoint: Any) -> PublicLanguage:
    """The public side of the language model ``endpoint`` serves (an
    :class:`~reprogram.blackbox.http.HttpEndpoint` whose ``info.public_side`` is set),
    downloaded once into the user cache under its fingerprint and checked against it.

    Raises:
        ReprogramError: the server gives no fingerprint, or what it hands out differs from it.
    """
    expected = endpoint.info.embedding_fingerprint
    if not expected:
        raise ReprogramError(
            f"the language model at {endpoint.url} gives no fingerprint of its public side, so "
            "a download could not be checked; name the model with #language=NAME to build its "
            "tokenizer and embeddings here."
        )
    folder = cache_dir("language-public", expected[:32])
    kept = folder / "public.safetensors"
    if kept.is_file():
        public = public_from_blob(kept.read_bytes(), folder)
        if public.embedding_fingerprint() == expected:
            return public
    blob = endpoint.public_side()
    public = public_from_blob(blob, folder)
    if public.embedding_fingerprint() != expected:
        raise ReprogramError(
            f"the public side the server at {endpoint.url} hands out differs from the one it "
            "says it reads (their fingerprints differ); rows built from it would mean something "
            "else to the model. Ask whoever runs the server, or name the model with "
            "#language=NAME."
        )
    atomic_write_bytes(kept, blob)
    return public


class LanguageEndpoint:
    """A :class:`LanguageSource` answering packed rows ``[B, T, D + 1]`` in-process."""

    def __init__(self, source: LanguageSource) -> None:
        self.source = source
        self.info = language_info(source, public=False)  # in-process: the same public side

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Features or logits float32 ``[B, K]`` for packed rows float32 ``[B, T, D + 1]``."""
        packed = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        return answer_rows(self.source, packed).numpy()


class LanguageQuerySource(BlackBoxSource):
    """A frozen language model that only answers queries; its tokenizer and input embeddings
    stay readable (what a token program needs to build its inputs).

    Args:
        source: the language model whose public side (tokenizer, input embeddings) token
            programs read; without ``endpoint`` it also answers the queries, in-process. With
            an endpoint it may be the public side alone (:class:`PublicLanguage`).
        endpoint: what answers the queries instead (an HTTP API serving the same model:
            :func:`remote_language`).
        **kwargs: :class:`BlackBoxSource` options (``name``, ``budget``, ``cache_size``,
            ``max_batch``).

    Forward: :class:`TokenInputs` (``embeds`` ``[B, T, D]``, ``mask`` ``[B, T]``) → ``[B, K]``
    without an autograd graph.
    """

    def __init__(
        self,
        source: LanguageSource | PublicLanguage,
        endpoint: QueryEndpoint | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cache_size", max(64, min(4096, CACHE_VALUES // source.num_classes)))
        if endpoint is None:
            if not isinstance(source, LanguageSource):
                raise ReprogramError(
                    f"{source.name} is a public side only (no model): give the endpoint that "
                    "answers its queries."
                )
            endpoint = LanguageEndpoint(source)
            kwargs.setdefault("name", f"query:{source.name}")
            kwargs.setdefault("fingerprint", f"query:{source.fingerprint()}")
        super().__init__(endpoint, resize=False, **kwargs)
        # the public side (tokenizer, input embeddings), read by token programs through
        # :func:`~reprogram.sources.language.public_language`
        self.language = source
        self.outputs = source.outputs  # features or logits: which mappings apply
        self.output = source.output

    # ------------------------------------------------------------------ Source's interface
    @property
    def max_positions(self) -> int:
        """The most positions one query may take."""
        return self.language.max_positions

    @property
    def num_parameters(self) -> int:
        """The in-process model's size (0 for a public side alone: the weights stay remote)."""
        return self.language.num_parameters

    def with_positions(self, count: int) -> Source:
        """Refused: per-position states (forecasting) are not served through queries."""
        raise ReprogramError(
            f"{self.name} answers one pooled row per query; a forecasting program reads every "
            "position's states, which no query-only route serves. Train it with gradients "
            "(--optimizer gradient, the default)."
        )

    def spec(self) -> dict[str, object]:
        return {**super().spec(), "output": self.output}

    # ------------------------------------------------------------------ queries
    def forward(self, inputs: TokenInputs) -> torch.Tensor:  # type: ignore[override]
        """``[B, K]`` features or logits for ``inputs``, answered by queries (no graph)."""
        embeds, mask = check_token_inputs(inputs, self.name, self.max_positions)
        with torch.no_grad():
            rows = torch.cat([embeds.detach().float(), mask.detach().float().unsqueeze(-1)], -1)
            answers = self._answer(np.ascontiguousarray(rows.cpu().numpy()))
        return torch.from_numpy(answers).to(embeds.device)

    def check_answer(self, answers: np.ndarray, batch: int) -> np.ndarray:
        """Shape ``[batch, K]`` and finite values (features and logits are no distribution):
        :func:`~reprogram.blackbox.wire.check_outputs`, the check the HTTP client makes."""
        try:
            return check_outputs(answers.astype(np.float32, copy=False), batch, self.num_classes)
        except ValueError as exc:
            raise EndpointError(f"the black box {self.name} answered {exc}.") from None


def remote_language(
    endpoint: QueryEndpoint, name: str, public: Source | LanguageSide
) -> BlackBoxSource:
    """A served language model (``endpoint.info.kind == "language"``) as a query-only source
    named ``name``, whose public side is ``public`` (built here).

    ``public`` is checked against what the server reads: the same input-embedding table (its
    fingerprint) and the same answer (features or logits, and their count).

    Raises:
        ReprogramError: ``public`` is no language model, or differs from the server's.
    """
    info = endpoint.info
    wanted = public.name
    if not isinstance(public, (LanguageSource, PublicLanguage)):
        raise ReprogramError(
            f"language={wanted!r} is not a language model (minilm-l6, smollm2-135m, hf:NAME)."
        )
    served = f"the server at {name.partition('#')[0]} serves {info.name!r}"
    if info.embedding_fingerprint and public.embedding_fingerprint() != info.embedding_fingerprint:
        raise ReprogramError(
            f"{served}, whose input embeddings differ from those of {wanted!r} built here (their "
            "fingerprints differ): rows built from them would mean something else to it. Install "
            "the same weights here, or name the right model with #language=NAME."
        )
    if (public.outputs, public.num_classes) != (info.output, info.num_classes):
        raise ReprogramError(
            f"{served}, which answers {info.num_classes} {info.output or 'values'}, but "
            f"{wanted!r} here answers {public.num_classes} {public.outputs}. Name the same "
            "model and #output with #language=NAME."
        )
    return LanguageQuerySource(public, endpoint, name=name)


def query_any(source: Source, **kwargs: Any) -> BlackBoxSource:
    """``source`` answered as a black box (``query:NAME``): a language model through
    :class:`LanguageQuerySource`, any other source through
    :func:`~reprogram.blackbox.source.query_source`."""
    if isinstance(source, LanguageSource):
        return LanguageQuerySource(source, **kwargs)
    return query_source(source, **kwargs)


__all__ = [
    "LanguageEndpoint",
    "LanguageQuerySource",
    "answer_rows",
    "fetch_public",
    "language_info",
    "language_model",
    "public_blob",
    "public_from_blob",
    "query_any",
    "remote_language",
]
