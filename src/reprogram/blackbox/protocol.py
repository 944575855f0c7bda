"""The contract between reprogram and a source it can only query.

A black-box endpoint (a Python callable, an ONNX Runtime session, an HTTP API) is anything that
implements :class:`QueryEndpoint`: a batch of pixels in, class probabilities out. Counting,
budgets, caching and the ``torch`` side live elsewhere (``reprogram.blackbox``); an endpoint
only answers.

Pixels are what the program produces: float32 ``[B, C, H, W]`` in ``[0, 1]``, before the
source model's own normalisation (the endpoint applies it, as a deployed API would). Answers are
float32 ``[B, K]``, finite, non-negative, each row summing to one (within ``1e-3``). An endpoint
in top-k mode answers only the ``k`` best labels with their scores; :func:`dense_from_topk`
turns that into the dense form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ReprogramError


@dataclass(frozen=True)
class EndpointInfo:
    """What a black box says about itself (an HTTP API's ``GET /health`` answers this).

    Attributes:
        name: the source model's name, e.g. ``efficientnet-lite0``.
        input_shape: ``(C, H, W)`` it expects.
        num_classes: ``K``, the length of every probability row.
        label_names: ``K`` names, or empty when the API does not say.
        top_k: ``0`` when answers are full distributions, else how many labels each answer has.
        fingerprint: an identifier of the model's weights when the API exposes one, else ``""``.
        kind: ``"image"`` (pixels in, probabilities out) or ``"language"`` (rows of token
            embeddings with their mask in, features or logits out; ``input_shape`` is then
            ``(max_positions, D)``).
        output: a language model's answer: ``"features"`` (pooled states) or ``"logits"``.
        language: the registered language model whose tokenizer and input embeddings (its
            public side) a client reads to build its rows, e.g. ``minilm-l6``.
        embedding_fingerprint: SHA-256 of that public side (input-embedding table), so a
            client can check that its local copy is the one the server reads.
        public_side: the server hands that public side out (``GET /language``), so a client
            needs neither the model's weights nor its name to build its rows.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    label_names: tuple[str, ...] = field(default_factory=tuple)
    top_k: int = 0
    fingerprint: str = ""
    kind: str = "image"
    output: str = ""
    language: str = ""
    embedding_fingerprint: str = ""
    public_side: bool = False


@runtime_checkable
class QueryEndpoint(Protocol):
    """Anything that answers batches of queries with probabilities."""

    info: EndpointInfo

    def __call__(self, pixels: np.ndarray, /) -> np.ndarray:
        """Probabilities float32 ``[B, K]`` for pixels float32 ``[B, C, H, W]`` in ``[0, 1]``.

        One call is ``B`` queries. Raises :class:`EndpointError` when no valid answer came.
        """
        ...


class EndpointError(ReprogramError, RuntimeError):
    """The endpoint gave no valid answer (after any retries it makes).

    A :class:`~reprogram.errors.ReprogramError` too, so the command line prints its message as
    one paragraph (server down, wrong token, budget of retries spent) instead of a traceback.
    """


def dense_from_topk(indices: np.ndarray, scores: np.ndarray, num_classes: int) -> np.ndarray:
    """Dense probabilities ``[B, K]`` from top-k answers ``indices`` and ``scores`` ``[B, k]``.

    The probability mass the answer leaves out (``1 - sum(scores)``, at least 0) is spread evenly
    over the ``K - k`` labels it does not name, so every row sums to one and no label has
    probability exactly zero when mass is left (log-probabilities stay finite).
    """
    indices = np.asarray(indices, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if indices.shape != scores.shape or indices.ndim != 2:
        raise ValueError(
            f"top-k indices {indices.shape} and scores {scores.shape} must both be [B, k]"
        )
    k = indices.shape[1]
    if k > num_classes:
        raise ValueError(f"top-k answer names {k} labels but the model has {num_classes}")
    rest = np.clip(1.0 - scores.sum(axis=1, keepdims=True), 0.0, None)
    out = np.repeat(rest / max(num_classes - k, 1), num_classes, axis=1)
    np.put_along_axis(out, indices, scores, axis=1)
    out /= out.sum(axis=1, keepdims=True)
    return out.astype(np.float32)


__all__ = ["EndpointError", "EndpointInfo", "QueryEndpoint", "dense_from_topk"]
