"""``BlackBoxSource``: a source reprogram can only query, with query accounting.

It stands wherever a :class:`~reprogram.sources.base.Source` does (the trainer,
``ReprogrammedModel``, mappings, artifacts). Its forward takes pixels ``[B, C, H, W]`` and
returns the LOG-probabilities the box answered, centred per row (``log p − mean(log p)``), as
the "logits" ``[B, K]``: their softmax is the answer, so every mapping works from probabilities
alone, and for an answer that is a softmax they equal the model's own logits minus their mean
(the same scale a white-box source gives a linear mapping; raw log-probabilities of a
confident model sit near −30 and make a linear mapping's first steps explode). The box is
never differentiated: the output carries no autograd graph, so only parameters after the box
(the label mapping) get exact gradients; the program's come from zeroth-order estimates
(``rgf``, ``spsa-gc``).

Accounting (:class:`QueryLedger`): one input scored by the box is one query (a batch of 64 is
64). Inputs bit-identical to one already answered come from a bounded cache and are counted as
cache hits, not queries. A budget is checked BEFORE a request is sent: a request that would go
over raises :class:`QueryBudgetExceeded` and nothing is sent. Counts, budget reserve and cache
are state the trainer checkpoints, so a resumed run neither loses nor double-counts queries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReprogramError
from .cache import AnswerCache, input_key
from .protocol import EndpointError, EndpointInfo, QueryEndpoint

#: Probabilities are clamped to this before the log (float32 keeps about this much of a softmax).
MIN_PROBABILITY = 1e-38
PROB_TOLERANCE = 1e-3


class QueryBudgetExceeded(ReprogramError):
    """A request would take the run over its query budget; it was not sent."""


class QueryLedger:
    """Queries sent, cache hits, and the budget (``None``: unlimited).

    ``reserved`` queries of the budget are kept back for a later phase (the final test
    scoring): until :meth:`release` they cannot be spent. ``by_phase`` attributes queries to
    the phase named in ``phase`` when they were sent.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.reserved = 0
        self.queries = 0
        self.cache_hits = 0
        self.phase = "other"
        self.by_phase: dict[str, int] = {}

    @property
    def available(self) -> int | None:
        """Queries that may still be sent now (``None``: unlimited)."""
        if self.budget is None:
            return None
        return max(self.budget - self.reserved - self.queries, 0)

    def check(self, n: int) -> None:
        """Raise :class:`QueryBudgetExceeded` when ``n`` more queries would break the budget."""
        available = self.available
        if available is not None and n > available:
            held = f" ({self.reserved} held back for the test scoring)" if self.reserved else ""
            raise QueryBudgetExceeded(
                f"a request of {n} queries would exceed the query budget of {self.budget}: "
                f"{self.queries} already spent{held}. Nothing was sent. Raise --query-budget "
                f"or spend fewer queries per step (smaller q or samples, fewer epochs)."
            )

    def charge(self, n: int) -> None:
        """Count ``n`` answered queries in the current phase."""
        self.queries += n
        self.by_phase[self.phase] = self.by_phase.get(self.phase, 0) + n

    def release(self) -> None:
        """Make the held-back queries spendable (the test scoring is about to run)."""
        self.reserved = 0

    def reset(self) -> None:
        self.queries, self.cache_hits, self.reserved, self.by_phase = 0, 0, 0, {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "cache_hits": self.cache_hits,
            "by_phase": dict(self.by_phase),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.queries = int(state["queries"])
        self.cache_hits = int(state["cache_hits"])
        self.by_phase = {str(k): int(v) for k, v in state["by_phase"].items()}


class BlackBoxSource(nn.Module):
    """A query-only classifier behind a :class:`QueryEndpoint`.

    Args:
        endpoint: answers pixels float32 ``[B, C, H, W]`` in ``[0, 1]`` with probabilities
            float32 ``[B, K]``.
        name: the name that rebuilds it (``onnx:PATH``, ``http://…``, ``query:NAME``).
        fingerprint: identifies the model's weights (default: the endpoint's, else a hash of
            what the endpoint says about itself).
        budget: hard query budget (``None``: unlimited); the trainer sets it from
            ``--query-budget``.
        cache_size: rows the answer cache holds (0 turns caching off).
        max_batch: most inputs per request (``None``: the whole batch at once).
        resize: resize pixels whose height and width differ from the endpoint's
            ``input_shape`` to it (bilinear) before sending; ``False`` sends them as they are
            (an in-process model that takes any size).

    Every value is clamped to ``[0, 1]`` before it is sent (an API takes images).
    """

    access = "query"  #: only answers queries: no gradients, every query counted

    def __init__(
        self,
        endpoint: QueryEndpoint,
        *,
        name: str | None = None,
        fingerprint: str | None = None,
        budget: int | None = None,
        cache_size: int = 4096,
        max_batch: int | None = None,
        resize: bool = True,
    ) -> None:
        super().__init__()
        info: EndpointInfo = endpoint.info
        self.endpoint = endpoint
        self.info = info
        self.name = name or info.name
        self.input_size = tuple(int(v) for v in info.input_shape)
        self.label_names = list(info.label_names) or [f"class_{i}" for i in range(info.num_classes)]
        if len(self.label_names) != info.num_classes:
            raise ReprogramError(
                f"the black box {self.name} names {len(self.label_names)} labels but answers "
                f"{info.num_classes} probabilities."
            )
        self._fingerprint = fingerprint or info.fingerprint or _info_fingerprint(info)
        self.ledger = QueryLedger(budget)
        self.cache = AnswerCache(cache_size)
        self.max_batch = max_batch
        self.resize = resize

    # ------------------------------------------------------------------ Source's interface
    def train(self, mode: bool = True) -> BlackBoxSource:
        """Always in eval mode (there is nothing to train in a black box)."""
        return super().train(False)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def num_parameters(self) -> int:
        """0: the weights are unknown to us."""
        return 0

    def fingerprint(self) -> str:
        return self._fingerprint

    def diagnostics(self) -> list[Any]:
        """None: a diagnostic would spend queries."""
        return []

    def spec(self) -> dict[str, object]:
        """What config.json records about the source."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "parameters": 0,
            "access": "query",
            "top_k": self.info.top_k,
        }

    # ------------------------------------------------------------------ queries
    def reset_queries(self) -> None:
        """Zero the counts and empty the cache (a new run starts from nothing)."""
        self.ledger.reset()
        self.cache.clear()

    def query_state_dict(self) -> dict[str, Any]:
        """Counts and cache, for checkpoints."""
        return {"ledger": self.ledger.state_dict(), "cache": self.cache.state_dict()}

    def load_query_state_dict(self, state: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state["ledger"])
        self.cache.load_state_dict(state["cache"])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Centred log-probabilities ``[B, K]`` (no autograd graph) for pixels ``[B, C, H, W]``."""
        with torch.no_grad():
            x = pixels.detach().to(torch.float32)
            if self.resize and tuple(x.shape[-2:]) != self.input_size[1:]:
                x = F.interpolate(x, size=self.input_size[1:], mode="bilinear", align_corners=False)
            if x.shape[1] != self.input_size[0]:
                if x.shape[1] != 1:
                    raise ReprogramError(
                        f"the black box {self.name} takes {self.input_size[0]} channels, got "
                        f"{x.shape[1]}."
                    )
                x = x.expand(-1, self.input_size[0], -1, -1)
            batch = np.ascontiguousarray(x.clamp(0.0, 1.0).cpu().numpy(), dtype=np.float32)
            probs = self._answer(batch)
            out = torch.from_numpy(probs).clamp_min_(MIN_PROBABILITY).log_()
            out -= out.mean(dim=-1, keepdim=True)
        return out.to(pixels.device)

    def _answer(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``[B, K]`` for ``batch``: cached rows, then one request for the rest."""
        keys = [input_key(row) for row in batch]
        out = np.empty((len(batch), self.num_classes), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            row = self.cache.get(key) if key not in missing else None
            if row is not None:
                out[i] = row
                self.ledger.cache_hits += 1
            elif key in missing:  # a duplicate inside this batch: sent once, a cache hit
                missing[key].append(i)
                self.ledger.cache_hits += 1
            else:
                missing[key] = [i]
        if missing:
            first = [rows[0] for rows in missing.values()]
            self.ledger.check(len(first))
            answers = self._send(batch[first])
            for (key, rows), answer in zip(missing.items(), answers, strict=True):
                self.cache.put(key, answer)
                out[rows] = answer
        return out

    def _send(self, pixels: np.ndarray) -> np.ndarray:
        """Query the endpoint (in chunks of ``max_batch``); counts every answered input."""
        step = self.max_batch or len(pixels)
        parts = []
        for i in range(0, len(pixels), step):
            chunk = pixels[i : i + step]
            try:
                probs = self.endpoint(chunk)
            except EndpointError as exc:
                raise EndpointError(
                    f"the black box {self.name} gave no valid answer: {exc}"
                ) from None
            probs = _check_answer(np.asarray(probs), len(chunk), self.num_classes, self.name)
            self.ledger.charge(len(chunk))
            parts.append(probs)
        return np.concatenate(parts)


def _check_answer(probs: np.ndarray, batch: int, num_classes: int, name: str) -> np.ndarray:
    """The answer as float32 ``[batch, K]``; :class:`EndpointError` if it is no distribution."""
    problem = None
    if probs.shape != (batch, num_classes):
        problem = f"shape {tuple(probs.shape)} instead of {(batch, num_classes)}"
    elif not np.all(np.isfinite(probs)) or (probs < 0).any():
        problem = "negative or non-finite probabilities"
    elif batch and np.abs(probs.sum(axis=1) - 1.0).max() > PROB_TOLERANCE:
        problem = "rows that do not sum to one"
    if problem:
        raise EndpointError(f"the black box {name} answered {problem}.")
    return probs.astype(np.float32, copy=False)


def _info_fingerprint(info: EndpointInfo) -> str:
    """``info:<sha256>`` of what the endpoint says about itself (when it gives no fingerprint)."""
    text = json.dumps(
        [info.name, list(info.input_shape), info.num_classes, list(info.label_names)],
        sort_keys=True,
    )
    return "info:" + hashlib.sha256(text.encode()).hexdigest()


class CallableEndpoint:
    """A Python function ``fn(pixels [B, C, H, W]) -> probabilities [B, K]`` as an endpoint."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], info: EndpointInfo) -> None:
        self.fn = fn
        self.info = info

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(pixels), dtype=np.float32)


def from_callable(
    fn: Callable[[np.ndarray], np.ndarray], info: EndpointInfo, **kwargs: Any
) -> BlackBoxSource:
    """A black box answered by ``fn`` (numpy in, numpy out); ``kwargs`` go to the source."""
    return BlackBoxSource(CallableEndpoint(fn, info), **kwargs)


class SourceEndpoint:
    """A white-box :class:`Source` answered in-process as a black box (softmax of its logits).

    ``info.input_shape`` is ``(C, canvas, canvas)`` when ``canvas`` is given, else the
    source's own input size.
    """

    def __init__(self, source: nn.Module, canvas: int | None = None) -> None:
        self.source = source
        c, h, w = source.input_size  # type: ignore[misc]
        shape = (c, canvas, canvas) if canvas else (c, h, w)
        self.info = EndpointInfo(
            name=source.name,  # type: ignore[arg-type]
            input_shape=shape,
            num_classes=source.num_classes,  # type: ignore[arg-type]
            label_names=tuple(source.label_names),  # type: ignore[arg-type]
            fingerprint=source.fingerprint(),  # type: ignore[operator]
        )

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.source(torch.from_numpy(np.ascontiguousarray(pixels)))
            return torch.softmax(logits.float(), dim=-1).numpy()


def query_source(source: nn.Module, **kwargs: Any) -> BlackBoxSource:
    """``source`` (white box) queried as a black box: named ``query:NAME``, counted, no gradients.

    Its fingerprint is ``query:`` + the source's, so an artifact trained through queries is
    never silently loaded on the white box (whose raw logits differ from log-probabilities).
    """
    if isinstance(source, BlackBoxSource):
        return source
    endpoint = SourceEndpoint(source)
    return BlackBoxSource(
        endpoint,
        name=f"query:{source.name}",
        fingerprint=f"query:{endpoint.info.fingerprint}",
        resize=False,
        **kwargs,
    )


def is_blackbox(source: nn.Module) -> bool:
    """Whether ``source`` can only be queried."""
    return isinstance(source, BlackBoxSource)


__all__ = [
    "BlackBoxSource",
    "CallableEndpoint",
    "QueryBudgetExceeded",
    "QueryLedger",
    "SourceEndpoint",
    "from_callable",
    "is_blackbox",
    "query_source",
]
