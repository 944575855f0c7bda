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

Accounting (:class:`QueryLedger`): one input sent to the box is one query (a batch of 64 is
64), whether or not an answer came back: a server may charge for every request it receives.
An endpoint that retries (``HttpEndpoint``) reports each attempt to the ledger before sending
it (its ``meter``), so retries are counted and bounded too; the ledger also counts the queries
answered and those sent again as retries. Inputs bit-identical to one already answered come
from a bounded cache and are counted as cache hits, not queries. A budget is checked BEFORE
anything is sent: a request (or a retry) that would go over raises
:class:`QueryBudgetExceeded` and is not sent. Counts, budget reserve and cache are state the
trainer checkpoints, and during a run the ledger appends every request to a journal
(``queries.jsonl`` in ``--out``) before sending it, so a resumed run, even after a kill, loses
no query it sent; every answer is appended to ``queries.answers`` as it arrives
(:mod:`~reprogram.blackbox.replay`), so the resumed run replays what it was already answered
after the last checkpoint instead of paying for it twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReprogramError
from .cache import AnswerCache, input_key
from .protocol import EndpointError, EndpointInfo, QueryEndpoint
from .replay import AnswerLog

#: Probabilities are clamped to this before the log (float32 keeps about this much of a softmax).
MIN_PROBABILITY = 1e-38
PROB_TOLERANCE = 1e-3


class QueryBudgetExceeded(ReprogramError):
    """A request would take the run over its query budget; it was not sent."""


class RetryBudgetExceeded(QueryBudgetExceeded, EndpointError):
    """A retry would take the run over its query budget; it was not sent.

    Also an :class:`EndpointError`: the endpoint failed to answer within what the budget
    allows, and the trainer stops as for a failing endpoint (counts saved, resume hint).
    """


JOURNAL_NAME = "queries.jsonl"


class QueryLedger:
    """Queries sent (retries included), answered and retried, cache hits, and the budget.

    ``queries`` counts every input sent, ``answered`` those that got a valid answer and
    ``retried`` those sent again after a failed attempt. ``budget`` (``None``: unlimited) bounds
    ``queries``. ``reserved`` queries of the budget are kept back for a later phase (the final
    test scoring): until :meth:`release` they cannot be spent. ``by_phase`` attributes queries
    to the phase named in ``phase`` when they were sent. Thread-safe (an endpoint may report
    attempts from its worker threads). With a journal open (:meth:`open_journal`), every
    request is appended to it before it is sent.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.reserved = 0
        self.queries = 0
        self.answered = 0
        self.retried = 0
        self.cache_hits = 0
        self.replayed = 0
        self.phase = "other"
        self.by_phase: dict[str, int] = {}
        self._lock = threading.RLock()
        self._journal: IO[str] | None = None

    @property
    def available(self) -> int | None:
        """Queries that may still be sent now (``None``: unlimited)."""
        if self.budget is None:
            return None
        return max(self.budget - self.reserved - self.queries, 0)

    def check(self, n: int, retry: bool = False) -> None:
        """Raise :class:`QueryBudgetExceeded` (:class:`RetryBudgetExceeded` for a retry) when
        ``n`` more queries would break the budget."""
        available = self.available
        if available is not None and n > available:
            held = f" ({self.reserved} held back for the test scoring)" if self.reserved else ""
            if retry:
                raise RetryBudgetExceeded(
                    f"a retry of {n} queries (the endpoint gave no valid answer to them) would "
                    f"exceed the query budget of {self.budget}: {self.queries} already sent, "
                    f"{self.retried} of them retries{held}. The retry was not sent. Raise "
                    f"--query-budget, or check the endpoint: its failures are spending the "
                    f"budget."
                )
            raise QueryBudgetExceeded(
                f"a request of {n} queries would exceed the query budget of {self.budget}: "
                f"{self.queries} already spent{held}. Nothing was sent. Raise --query-budget "
                f"or spend fewer queries per step (smaller q or samples, fewer epochs)."
            )

    def record_sent(self, n: int, retry: bool = False) -> None:
        """Count ``n`` queries about to be sent (``retry``: again, after a failed attempt).

        Checks the budget first (nothing is counted, and the caller must not send, when it
        raises) and appends the request to the journal before returning.
        """
        with self._lock:
            self.check(n, retry)
            self.queries += n
            if retry:
                self.retried += n
            self.by_phase[self.phase] = self.by_phase.get(self.phase, 0) + n
            self._write({"sent": n, "phase": self.phase, "retry": retry})

    def record_answered(self, n: int) -> None:
        """Count ``n`` queries that got a valid answer."""
        with self._lock:
            self.answered += n
            self._write({"answered": n})

    def charge(self, n: int) -> None:
        """Count ``n`` queries sent and answered at once (an endpoint without a meter)."""
        with self._lock:
            self.record_sent(n)
            self.record_answered(n)

    def release(self) -> None:
        """Make the held-back queries spendable (the test scoring is about to run)."""
        self.reserved = 0

    def reset(self) -> None:
        with self._lock:
            self.queries, self.answered, self.retried = 0, 0, 0
            self.cache_hits, self.reserved, self.by_phase = 0, 0, {}
            self.replayed = 0

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queries": self.queries,
                "answered": self.answered,
                "retried": self.retried,
                "cache_hits": self.cache_hits,
                "replayed": self.replayed,
                "by_phase": dict(self.by_phase),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.queries = int(state["queries"])
            self.answered = int(state.get("answered", self.queries))  # older checkpoints
            self.retried = int(state.get("retried", 0))
            self.cache_hits = int(state["cache_hits"])
            self.replayed = int(state.get("replayed", 0))
            self.by_phase = {str(k): int(v) for k, v in state["by_phase"].items()}

    # ------------------------------------------------------------------ the journal
    def open_journal(self, path: Path, fresh: bool) -> None:
        """Append every request to ``path`` from now on (``fresh``: start it empty).

        One JSON object a line: ``{"sent": n, "phase": p, "retry": bool}`` written before a
        request goes out, ``{"answered": n}`` after a valid answer. Lines are written through
        at once (a killed process loses none it wrote).
        """
        with self._lock:
            self.close_journal()
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():  # a link planted in --out is replaced, never written through
                path.unlink()
            mode = os.O_TRUNC if fresh else os.O_APPEND
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | mode
            fd = os.open(path, flags, 0o666)
            self._journal = open(fd, "w", encoding="utf-8", buffering=1)

    def close_journal(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def _write(self, event: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(event) + "\n")

    def load_journal(self, path: Path) -> bool:
        """Take the counts of queries sent, answered and retried (and by phase) from the
        journal at ``path``; False (nothing changed) when there is none. A line cut short by
        a kill is skipped."""
        path = Path(path)
        if not path.is_file():
            return False
        queries = answered = retried = 0
        by_phase: dict[str, int] = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            n = event.get("sent")
            if isinstance(n, int):
                queries += n
                retried += n if event.get("retry") else 0
                phase = str(event.get("phase", "other"))
                by_phase[phase] = by_phase.get(phase, 0) + n
            elif isinstance(event.get("answered"), int):
                answered += event["answered"]
        with self._lock:
            self.queries, self.answered, self.retried = queries, answered, retried
            self.by_phase = by_phase
        return True


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
        # an endpoint with a ``meter`` reports every attempt (retries too) before sending it
        self.metered = hasattr(endpoint, "meter")
        if self.metered:
            endpoint.meter = self.ledger  # type: ignore[attr-defined]
        self.cache = AnswerCache(cache_size)
        self.answer_log = AnswerLog()
        #: answers paid for before a resume, used once each when the same input comes again
        self.replay: dict[bytes, np.ndarray] = {}
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
            "parameters": self.num_parameters,
            "access": "query",
            "top_k": self.info.top_k,
        }

    # ------------------------------------------------------------------ queries
    def reset_queries(self) -> None:
        """Zero the counts and empty the cache (a new run starts from nothing)."""
        self.ledger.reset()
        self.cache.clear()
        self.replay.clear()

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
            elif key not in missing and (row := self.replay.pop(key, None)) is not None:
                out[i] = row  # paid for before the resume: no query
                self.ledger.replayed += 1
                self.cache.put(key, row)
            elif key in missing:  # a duplicate inside this batch: sent once, a cache hit
                missing[key].append(i)
                self.ledger.cache_hits += 1
            else:
                missing[key] = [i]
        if missing:
            first = [rows[0] for rows in missing.values()]
            self.ledger.check(len(first))
            answers = self._send(batch[first])
            self.answer_log.append(list(missing), answers)
            for (key, rows), answer in zip(missing.items(), answers, strict=True):
                self.cache.put(key, answer)
                out[rows] = answer
        return out

    def _send(self, pixels: np.ndarray) -> np.ndarray:
        """Query the endpoint (in chunks of ``max_batch``); counts every input sent.

        A metered endpoint counts its own attempts in the ledger; for the others, a call that
        answered is counted as sent and answered (a failed in-process call charged nothing).
        """
        step = self.max_batch or len(pixels)
        parts = []
        for i in range(0, len(pixels), step):
            chunk = pixels[i : i + step]
            try:
                probs = self.endpoint(chunk)
            except QueryBudgetExceeded:
                raise
            except EndpointError as exc:
                raise EndpointError(
                    f"the black box {self.name} gave no valid answer: {exc}"
                ) from None
            probs = self.check_answer(np.asarray(probs), len(chunk))
            if not self.metered:
                self.ledger.charge(len(chunk))
            parts.append(probs)
        return np.concatenate(parts)

    def check_answer(self, answers: np.ndarray, batch: int) -> np.ndarray:
        """The endpoint's answer to ``batch`` inputs as float32 ``[batch, K]``, or an
        :class:`EndpointError`: here each row must be a probability distribution."""
        return _check_answer(answers, batch, self.num_classes, self.name)


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
        size = tuple(source.input_size)  # type: ignore[arg-type]
        if len(size) != 3:
            reads = "embeddings [positions, width]" if len(size) == 2 else "waveforms [T]"
            raise ReprogramError(
                f"query-only training (--optimizer rgf or spsa-gc) sends images to a box that "
                f"answers class probabilities; the source {source.name} reads {reads}, which "
                "no query-only route serves yet. Train it with gradients (--optimizer "
                "gradient, the default), or reprogram an image source through queries."
            )
        c, h, w = size
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
    "JOURNAL_NAME",
    "BlackBoxSource",
    "CallableEndpoint",
    "QueryBudgetExceeded",
    "QueryLedger",
    "RetryBudgetExceeded",
    "SourceEndpoint",
    "from_callable",
    "is_blackbox",
    "query_source",
]
