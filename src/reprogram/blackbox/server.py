"""``reprogram serve``: a query-only HTTP API in front of a model (FastAPI + uvicorn).

The API is the black box that :class:`reprogram.blackbox.http.HttpEndpoint` queries; the wire
format is described in :mod:`reprogram.blackbox.http`. :func:`create_app` builds it around any
``model_fn`` (pixels ``[B, C, H, W]`` in ``[0, 1]`` → probabilities ``[B, K]``, torch, run
without gradients, one call at a time); :func:`serve` runs it with uvicorn, bound to the
loopback address unless told otherwise; :func:`running_server` runs it in a background thread
(tests, benchmarks).

What the server guards:
- a bearer token (``Authorization: Bearer T``; 401 when missing or wrong; compared in constant
  time) when one is set, for ``/predict`` and ``/health`` alike;
- the body size (413 from ``Content-Length`` before reading anything, and again while reading
  a body that does not declare its length);
- the work in flight: at most ``max_inflight`` authenticated ``/predict`` requests are read,
  decoded or answered at once (503 with ``Retry-After`` beyond);
- the connections (:func:`serve`, :func:`running_server`): a request whose headers are not
  complete within ``header_timeout`` seconds, or whose body is not complete within
  ``body_timeout``, has its connection closed; past ``max_connections`` open connections (by
  default sized from the process's file-descriptor limit) the oldest stalled one is shed, or
  the new one refused when none is stalled, so that ``accept()`` never runs out of descriptors;
  a client that stops reading its answer for ``write_timeout`` seconds has its connection
  dropped (a slow reader cannot hold a connection, nor a slot of the work in flight);
- the inputs (422: not JSON or JSON nested too deeply, bad base64, a shape other than
  ``[B, *input_shape]``, ``B`` over ``max_batch``, NaN/inf, values outside ``[0, 1]``; a
  language model's rows: a width other than ``D + 1``, more positions than it takes, a mask
  column with values other than 0 and 1 or without a real position);
- a thread-safe count of queries served (one input answered = one query).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import h11
import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..artifact import PROGRAM, load_artifact
from ..errors import ReprogramError
from ..sources import Source
from .protocol import EndpointInfo
from .wire import (
    BINARY_TYPE,
    DTYPES,
    ENCODINGS,
    LANGUAGE,
    SERVED_HEADER,
    TOKEN_ENV,
    binary_body,
    binary_pixels,
    check_rows,
    check_unit_range,
    decode_array,
    encode_array,
    input_key,
    max_inputs_per_body,
    resolve_token,
)

logger = logging.getLogger(__name__)

ModelFn = Callable[[torch.Tensor], torch.Tensor]
#: A language model's default body limit holds ``max_batch`` rows of this many positions, and
#: at least one row of every position the model takes (the client sends longer rows fewer to
#: a request).
LANGUAGE_BODY_POSITIONS = 128


class _Rejected(Exception):
    """A request the server refuses: HTTP ``status`` with ``detail``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


class QueryCounter:
    """Thread-safe count of answered queries (one input = one query)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, n: int) -> int:
        """Add ``n`` answered queries; returns the new total."""
        with self._lock:
            self._value += n
            return self._value

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


class _Slots:
    """At most ``size`` requests inside a ``with`` block (used on the event loop only).

    Entering when all are taken raises a 503 with ``Retry-After: 1`` instead of queueing, so
    that work waiting for the model (and the request bodies it holds) stays bounded.
    """

    def __init__(self, size: int) -> None:
        self.size = self.free = size

    def __enter__(self) -> None:
        if self.free <= 0:
            raise _Rejected(
                503,
                f"the server is busy ({self.size} requests already in progress); retry shortly",
                {"Retry-After": "1"},
            )
        self.free -= 1

    def __exit__(self, *exc: object) -> None:
        self.free += 1


DEFAULT_MAX_INFLIGHT = 16


def default_max_body_bytes(max_batch: int, input_shape: tuple[int, ...]) -> int:
    """Room for ``max_batch`` float32 inputs in base64 plus the JSON around them."""
    return 4 * math.ceil(max_batch * math.prod(input_shape) * 4 / 3) + 4096


def create_app(
    model_fn: ModelFn,
    info: EndpointInfo,
    *,
    token: str | None = None,
    max_batch: int = 256,
    max_body_bytes: int | None = None,
    top_k: int = 0,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    public: Callable[[], bytes] | None = None,
) -> FastAPI:
    """The FastAPI app answering ``POST /predict`` and ``GET /health`` (and ``GET /language``
    when ``public`` is given).

    Args:
        model_fn: pixels float32 ``[B, *info.input_shape]`` in ``[0, 1]`` → probabilities
            ``[B, K]``; called under ``torch.no_grad()``, never concurrently. For a language
            model (``info.kind == "language"``, ``input_shape`` ``(max_positions, D)``): rows
            float32 ``[B, T, D + 1]`` (embeddings and mask) → features or logits ``[B, K]``.
        info: what ``/health`` says (its ``top_k`` is replaced by ``top_k``).
        token: the bearer token clients must send; ``None`` (or empty) serves everyone.
        max_batch: most inputs one request may carry (422 beyond).
        max_body_bytes: largest request body (413 beyond); default: room for ``max_batch``
            float32 inputs (a language model's: rows of 128 positions, and at least one row
            of ``max_positions``).
        top_k: ``0`` answers full distributions; ``k > 0`` only the ``k`` best labels and
            their probabilities.
        max_inflight: most authenticated ``/predict`` requests being read, decoded or answered
            at once; more get 503 with ``Retry-After: 1`` (the model runs one call at a time,
            so this bounds the queue in front of it and the bodies held in memory).
        public: a language model's public side (tokenizer and input embeddings, packed by
            :func:`~reprogram.blackbox.language.public_blob`), made on the first
            ``GET /language`` and kept; clients then need neither the weights nor the name.
    The count of queries served is ``app.state.queries`` (a :class:`QueryCounter`).
    """
    shape = tuple(int(v) for v in info.input_shape)
    if max_batch < 1:
        raise ReprogramError(f"max_batch must be at least 1, got {max_batch}.")
    if max_inflight < 1:
        raise ReprogramError(f"max_inflight must be at least 1, got {max_inflight}.")
    if not 0 <= top_k <= info.num_classes:
        raise ReprogramError(f"top_k must lie in [0, {info.num_classes}], got {top_k}.")
    language = info.kind == LANGUAGE
    if language and top_k:
        raise ReprogramError(
            "top_k applies to probabilities; a language model answers features or logits "
            "whole. Drop --top-k."
        )
    # the smallest input one request must be able to carry: a language row of one position
    smallest = (1, shape[1] + 1) if language else shape
    if max_body_bytes is None and language:  # max_batch short rows, or one of full length
        width = shape[1] + 1
        max_body_bytes = max(
            default_max_body_bytes(max_batch, (min(shape[0], LANGUAGE_BODY_POSITIONS), width)),
            default_max_body_bytes(1, (shape[0], width)),
        )
    elif max_body_bytes is None:
        max_body_bytes = default_max_body_bytes(max_batch, shape)
    if max_inputs_per_body(max_body_bytes, smallest, 1) < 1:
        raise ReprogramError(
            f"max_body_bytes={max_body_bytes} leaves no room for one input of shape "
            f"{list(smallest)}."
        )
    described = (
        {
            "kind": LANGUAGE,
            "output": info.output,
            "language": info.language,
            "embedding_fingerprint": info.embedding_fingerprint,
            "public_side": public is not None,
        }
        if language
        else {}
    )
    info = dataclasses.replace(info, input_shape=shape, top_k=top_k)
    expected = hashlib.sha256(f"Bearer {token}".encode()).digest() if token else None
    counter = QueryCounter()
    model_lock = threading.Lock()
    busy = _Slots(max_inflight)

    app = FastAPI(
        title=f"reprogram black box: {info.name}", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.queries = counter
    app.state.info = info

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client left (or its connection was closed for a timeout) mid-body: nobody reads
        # this answer, and it is no server error worth a traceback in the log.
        return Response(status_code=400)

    def authorise(request: Request) -> None:
        if expected is None:
            return
        given = hashlib.sha256(request.headers.get("authorization", "").encode()).digest()
        if not hmac.compare_digest(given, expected):
            raise _Rejected(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )

    async def read_body(request: Request) -> bytearray:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise _Rejected(400, f"Content-Length {declared!r} is not a number")
            if int(declared) > max_body_bytes:
                raise _Rejected(
                    413,
                    f"the body has {int(declared)} bytes; this server takes at most "
                    f"{max_body_bytes} (send fewer inputs per request)",
                )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise _Rejected(
                    413, f"the body exceeds {max_body_bytes} bytes (send fewer inputs per request)"
                )
        return body

    def parse_pixels(body: bytearray, binary: bool = False) -> torch.Tensor:
        if binary:
            try:
                pixels = binary_pixels(body, input_key(info))
            except ValueError as exc:
                raise _Rejected(422, str(exc)) from None
        else:
            try:
                payload = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _Rejected(422, f"the body is not JSON ({exc})") from None
            except RecursionError:
                raise _Rejected(422, "the body's JSON is nested too deeply") from None
            try:
                pixels = decode_array(payload, "the request")
            except ValueError as exc:
                raise _Rejected(422, str(exc)) from None
        if language:  # width, positions, finite values and mask
            try:
                check_rows(pixels, shape)
            except ValueError as exc:
                raise _Rejected(422, str(exc)) from None
        elif pixels.ndim != len(shape) + 1 or tuple(pixels.shape[1:]) != shape:
            raise _Rejected(
                422,
                f"shape must be [B, {', '.join(map(str, shape))}] (this model's input), got "
                f"{list(pixels.shape)}",
            )
        if not 1 <= pixels.shape[0] <= max_batch:
            what = "rows" if language else "inputs"
            raise _Rejected(
                422, f"a request carries 1 to {max_batch} {what}, this one {pixels.shape[0]}"
            )
        if language:
            return torch.from_numpy(pixels.copy())  # writable for torch
        if pixels.dtype == np.uint8:
            x = pixels.astype(np.float32) / np.float32(255.0)
        else:
            x = pixels.copy()  # writable for torch
            try:
                check_unit_range(x, "pixel values")
            except ValueError as exc:
                raise _Rejected(422, str(exc)) from None
        return torch.from_numpy(x)

    def answer(x: torch.Tensor, binary: bool = False) -> Response:
        with model_lock, torch.no_grad():
            probs = model_fn(x).detach().to("cpu", torch.float32)
        if probs.shape != (x.shape[0], info.num_classes) or not torch.isfinite(probs).all():
            raise _Rejected(500, f"the model answered {list(probs.shape)} or non-finite values")
        served = counter.add(int(x.shape[0]))
        headers = {SERVED_HEADER: str(served)}
        if binary:
            if language:
                tensors = {"outputs": probs.contiguous().numpy()}
            elif top_k:
                scores, indices = probs.topk(top_k, dim=-1)
                tensors = {"indices": indices.numpy(), "scores": scores.numpy()}
            else:
                tensors = {"probabilities": probs.numpy()}
            return Response(binary_body(tensors), media_type=BINARY_TYPE, headers=headers)
        if language:
            out: dict[str, Any] = {"outputs": encode_array(probs.contiguous().numpy())}
        elif top_k:
            scores, indices = probs.topk(top_k, dim=-1)
            out = {"top_k": {"indices": indices.tolist(), "scores": scores.tolist()}}
        else:
            out = {"probabilities": encode_array(probs.contiguous().numpy())}
        out["queries_served"] = served
        # json.dumps of the base64 string is cheap next to the model; no pydantic on the way.
        return Response(json.dumps(out), media_type="application/json", headers=headers)

    def refuse(exc: _Rejected) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    def denied(request: Request) -> JSONResponse | None:
        """The refusal of a request without the token, else None."""
        try:
            authorise(request)
        except _Rejected as exc:
            return refuse(exc)
        return None

    @app.get("/health")
    async def health(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        return JSONResponse(
            {
                "name": info.name,
                "input_shape": list(shape),
                "num_classes": info.num_classes,
                "label_names": list(info.label_names),
                "top_k": top_k,
                "fingerprint": info.fingerprint,
                "max_batch": max_batch,
                "max_body_bytes": max_body_bytes,
                "dtypes": sorted(DTYPES),
                "encodings": list(ENCODINGS),
                "queries_served": counter.value,
                **described,
            }
        )

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        try:
            authorise(request)
            with busy:  # 503 + Retry-After when max_inflight requests are already in
                body = await read_body(request)
                # the body's Content-Type picks its decoding; Accept picks the answer's encoding
                binary_in = request.headers.get("content-type", "").startswith(BINARY_TYPE)
                binary_out = BINARY_TYPE in request.headers.get("accept", "")
                # one worker-thread hop for decoding and the model (neither blocks the loop)
                return await run_in_threadpool(
                    lambda: answer(parse_pixels(body, binary_in), binary_out)
                )
        except _Rejected as exc:
            return refuse(exc)

    if public is not None:
        packed: list[bytes] = []  # made once, on the first request

        @app.get("/language")
        async def public_side(request: Request) -> Response:
            if (refusal := denied(request)) is not None:
                return refusal
            if not packed:
                packed.append(await run_in_threadpool(public))
            return Response(packed[0], media_type=BINARY_TYPE)

    return app


# --------------------------------------------------------------------------- what to serve
def source_model(source: torch.nn.Module) -> tuple[ModelFn, EndpointInfo]:
    """``model_fn`` (softmax of the source's logits) and ``info`` for a registered source."""
    assert isinstance(source, Source)
    source.eval()

    def model_fn(pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(source(pixels), dim=-1)

    info = EndpointInfo(
        name=source.name,
        input_shape=tuple(source.input_size),
        num_classes=source.num_classes,
        label_names=tuple(source.label_names),
        fingerprint=source.fingerprint(),
    )
    return model_fn, info


def artifact_model(directory: str) -> tuple[ModelFn, EndpointInfo]:
    """``model_fn`` and ``info`` for a trained artifact: target inputs → target probabilities.

    Works for ``fit`` and ``baseline`` artifacts of image targets alike (others are refused:
    their inputs are token ids, windows or raw series, not pixels). The inputs are the target's
    (``config.json``'s ``target.input_shape``, values in ``[0, 1]``); the fingerprint hashes
    the source's weight fingerprint with the trained tensors.
    """
    from pathlib import Path

    model, config = load_artifact(directory)
    modality = str(config["target"].get("modality", "image"))
    if modality != "image":
        raise ReprogramError(
            f"reprogram serve DIR serves artifacts of image targets (pixels in [0, 1]); "
            f"{directory} was trained on the {modality} target {config['target'].get('name')!r}, "
            f"whose inputs this API does not carry. Use `reprogram predict {directory}` for it "
            "(a language model itself is served with `reprogram serve --source NAME`)."
        )
    model.eval()

    def model_fn(pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(pixels), dim=-1)

    source = config.get("source") or {}
    digest = hashlib.sha256(str(source.get("fingerprint", "")).encode())
    tensors = Path(directory) / PROGRAM
    digest.update(tensors.read_bytes() if tensors.is_file() else b"")
    names = tuple(str(n) for n in config["target"]["class_names"])
    if "baseline" in config:
        what = f"baseline:{config['baseline'].get('method', '?')}"
    else:
        what = f"reprogrammed:{source.get('name', '?')}"
    info = EndpointInfo(
        name=f"{what}->{config['target']['name']}",
        input_shape=tuple(int(v) for v in config["target"]["input_shape"]),
        num_classes=len(names),
        label_names=names,
        fingerprint=digest.hexdigest(),
    )
    return model_fn, info


# --------------------------------------------------------------------------- running it
def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``127.0.0.0/8``, ``::1``, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0
SERVE_TOKEN_ENV = "REPROGRAM_SERVE_TOKEN"
# Descriptors kept free for everything but client connections (the listening socket, logs,
# the model's files; a served tiny model holds 9): the connection cap is the limit minus this
# and minus _BATCHES_IN_FLIGHT accept batches.
_FD_RESERVE = 64
# asyncio accepts up to `backlog` sockets per loop turn, and a socket reaches the cap's check
# (connection_made) two turns after its accept(), an aborted one frees its descriptor one turn
# later: about three batches are held before the cap sees them (measured: with room for one
# batch, 300 stalled connections under a 256 limit still hit EMFILE). Four, for a margin.
_BATCHES_IN_FLIGHT = 4
# A connection mid-body that has sent nothing for this long counts as stalled (may be shed).
_STALLED_AFTER = 1.0
# At most one summary line of closed/shed/refused connections per this many seconds.
_REPORT_EVERY = 10.0


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """What a connection may hold of the server (see :func:`serve`).

    Attributes:
        header_timeout: seconds a request may take to send its complete headers (counted from
            the connection's opening, or from the previous answer on a kept-alive one).
        body_timeout: seconds a request may take to send its complete body once its headers
            are in.
        write_timeout: seconds an answer may stay unread: when the connection's send buffer
            stops draining (the client reads nothing) for this long, the connection is
            dropped, and a connection closed for any reason is dropped at once if unsent
            bytes would otherwise keep it open.
        max_connections: most connections open at once; ``0`` sizes it from the soft
            ``RLIMIT_NOFILE`` (the limit, less four accept batches not yet counted, less 64
            descriptors kept for the rest of the process). Past it the oldest stalled
            connection (headers not complete, or a body that stopped arriving or was already
            answered) is closed; when none is stalled the new connection is closed at once.
        backlog: the listening socket's queue, also the most connections accepted in one go;
            ``0`` picks a sixteenth of the descriptor limit (16 to 1024).
    """

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_connections: int = 0
    backlog: int = 0
    write_timeout: float = WRITE_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "write_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ReprogramError(f"{name} must be a positive number of seconds, got {value}.")
        if self.max_connections < 0 or self.backlog < 0:
            raise ReprogramError(
                f"max_connections and backlog must be at least 0 (0: from the descriptor "
                f"limit), got {self.max_connections} and {self.backlog}."
            )

    def resolved(self) -> ConnectionLimits:
        """These limits with ``0`` (automatic) values sized from the descriptor limit."""
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY or soft <= 0:
            soft = 1 << 16
        backlog = self.backlog or max(16, min(1024, soft // 16))
        room = soft - _BATCHES_IN_FLIGHT * backlog - _FD_RESERVE
        if self.max_connections:
            if self.max_connections > room:
                logger.warning(
                    "max_connections=%d and accept batches of %d leave fewer than %d of the "
                    "%d file descriptors this process may open for the rest of it; a flood of "
                    "connections may still exhaust them (raise `ulimit -n` or lower it).",
                    self.max_connections,
                    _BATCHES_IN_FLIGHT * backlog,
                    _FD_RESERVE,
                    soft,
                )
            return dataclasses.replace(self, backlog=backlog)
        if room < 8:
            raise ReprogramError(
                f"the file-descriptor limit ({soft}, `ulimit -n`) leaves no room for client "
                f"connections; raise it or set max_connections and backlog explicitly."
            )
        return dataclasses.replace(self, max_connections=room, backlog=backlog)


class _ConnectionGuard:
    """State shared by one server's connections: who is open (oldest first), what was closed."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: dict[_GuardedH11Protocol, None] = {}  # insertion order = oldest first
        self.closed: Counter[str] = Counter()
        self._reported = 0.0

    def admit(self, conn: _GuardedH11Protocol) -> bool:
        """Register ``conn``; past the cap shed the oldest stalled one, else refuse ``conn``."""
        self.open[conn] = None
        if len(self.open) <= self.limits.max_connections:
            return True
        now = time.monotonic()
        victim = next((c for c in self.open if c is not conn and c.stalled(now)), None)
        if victim is None:
            self.close(conn, "refused (every open connection busy)", abort=True)
            return False
        self.close(victim, "shed (stalled, to make room)", abort=True)
        return True

    def shed_stalled(self, n: int) -> int:
        """Close up to ``n`` of the oldest stalled connections; returns how many."""
        now = time.monotonic()
        victims = [c for c in self.open if c.stalled(now)][:n]
        for conn in victims:
            self.close(conn, "shed (out of file descriptors)", abort=True)
        return len(victims)

    def close(self, conn: _GuardedH11Protocol, reason: str, abort: bool = False) -> None:
        """Close ``conn`` (``abort``: at once, dropping unsent bytes) and count why.

        A graceful close waits for unsent bytes to drain; when some are waiting (a client that
        does not read) the connection is aborted instead, or it would stay open."""
        self.open.pop(conn, None)
        conn.stop_watching()
        if abort or conn.transport.get_write_buffer_size() > 0:
            conn.transport.abort()
        else:
            conn.transport.close()
        self.closed[reason] += 1
        self.report()

    def forget(self, conn: _GuardedH11Protocol) -> None:
        self.open.pop(conn, None)

    def report(self, force: bool = False) -> None:
        """One warning line for what was closed since the last one (rate-limited)."""
        now = time.monotonic()
        if not self.closed or (not force and now - self._reported < _REPORT_EVERY):
            return
        self._reported = now
        what = ", ".join(f"{n} {reason}" for reason, n in sorted(self.closed.items()))
        self.closed.clear()
        logger.warning(
            "closed connections: %s (limits: headers within %gs, bodies within %gs, %d open "
            "connections; %d open now)",
            what,
            self.limits.header_timeout,
            self.limits.body_timeout,
            self.limits.max_connections,
            len(self.open),
        )


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a place in a connection cap.

    uvicorn times out only idle kept-alive connections; a client that sends half a header line,
    or headers and then part of a body, holds its connection (and a file descriptor) for as
    long as it likes. Each phase of a request here has a deadline (one timer per connection):
    ``headers`` while h11 waits for the complete request head, ``body`` while it waits for the
    rest of the body; when the phase ends in time the timer is cancelled.
    """

    guard: _ConnectionGuard  # set on the per-server subclass made by _protocol_for

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._phase: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._last_data = time.monotonic()
        if self.guard.admit(self):
            self._watch()

    def data_received(self, data: bytes) -> None:
        self._last_data = time.monotonic()
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_watching()
        self._stop_write_timer()
        self.guard.forget(self)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The send buffer is full (the client reads slower than we answer): it must drain
        within ``write_timeout`` seconds."""
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self.guard.limits.write_timeout, self._write_expired
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stop_write_timer()

    def _write_expired(self) -> None:
        self._write_timer = None
        if not self.transport.is_closing():
            self.guard.close(
                self,
                f"timed out (answer not read within {self.guard.limits.write_timeout:g}s)",
                abort=True,
            )

    def stalled(self, now: float) -> bool:
        """Whether this connection may be shed: headers incomplete, a body that stopped
        arriving (nothing for a second) or was already answered (e.g. with 401), or an answer
        the client stopped reading."""
        if self.transport.is_closing():
            return False
        if self._write_timer is not None:
            return True
        if self._phase == "headers":
            return True
        if self._phase == "body":
            answered = self.conn.our_state in (h11.DONE, h11.MUST_CLOSE)
            return answered or now - self._last_data >= _STALLED_AFTER
        return False

    def stop_watching(self) -> None:
        """Cancel the phase deadline (the write deadline stays until the buffer drains or the
        connection is closed)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _stop_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _watch(self) -> None:
        """(Re)arm the deadline of the phase the request is in, if the phase changed."""
        state = self.conn.their_state
        if self.transport.is_closing():
            phase = None
        elif state is h11.IDLE:
            phase = "headers"
        elif state is h11.SEND_BODY:
            phase = "body"
        else:  # the request is complete (the app has it) or the connection is ending
            phase = None
        if phase == self._phase:
            return
        self.stop_watching()
        if phase is not None:
            limits = self.guard.limits
            timeout = limits.header_timeout if phase == "headers" else limits.body_timeout
            self._phase = phase
            self._timer = self.loop.call_later(timeout, self._expire, phase)

    def _expire(self, phase: str) -> None:
        self._timer = None
        if self._phase == phase and not self.transport.is_closing():
            limits = self.guard.limits
            timeout = limits.header_timeout if phase == "headers" else limits.body_timeout
            self.guard.close(self, f"timed out ({phase} not complete within {timeout:g}s)")


def _protocol_for(guard: _ConnectionGuard) -> type[_GuardedH11Protocol]:
    """A protocol class bound to one server's ``guard`` (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"guard": guard})


class _GuardedServer(uvicorn.Server):
    """uvicorn's server, with running out of file descriptors answered by shedding.

    The connection cap keeps the process below its descriptor limit; should something else
    use them up anyway, asyncio's accept loop reports EMFILE (and pauses accepting for a
    second): the oldest stalled connections are then shed and the report folded into the
    guard's rate-limited summary instead of a traceback per failed ``accept()``.
    """

    def __init__(self, config: uvicorn.Config, guard: _ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
                shed = self.guard.shed_stalled(max(8, self.guard.limits.max_connections // 8))
                self.guard.closed[f"accept() failed: {os.strerror(exc.errno)}"] += 1
                if not shed:
                    self.guard.report()
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        await super().startup(sockets=sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.guard.report(force=True)
        await super().shutdown(sockets=sockets)


def guarded_server(
    app: Any, limits: ConnectionLimits | None = None, **config: Any
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with ``limits`` (:class:`ConnectionLimits`) enforced.

    ``config`` goes to :class:`uvicorn.Config` (host, port, log_level, ...). The HTTP
    implementation is uvicorn's h11 one with deadlines (whatever else is installed), the loop
    asyncio; uvicorn's ``limit_concurrency`` (503 to new requests) is set the accept batches in
    flight above the connection cap: never reached by stalled connections, a bound on requests still
    running for connections already gone.
    """
    limits = (limits or ConnectionLimits()).resolved()
    guard = _ConnectionGuard(limits)
    uvicorn_config = uvicorn.Config(
        app,
        http=_protocol_for(guard),
        ws="none",
        loop="asyncio",
        backlog=limits.backlog,
        limit_concurrency=limits.max_connections + _BATCHES_IN_FLIGHT * limits.backlog,
        timeout_keep_alive=max(1, min(5, int(limits.header_timeout))),
        **config,
    )
    return _GuardedServer(uvicorn_config, guard)


def _run(server: uvicorn.Server) -> None:
    """Run ``server`` until interrupted (a seam for tests)."""
    server.run()


def serve(
    model_fn: ModelFn,
    info: EndpointInfo,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    max_batch: int = 256,
    max_body_bytes: int | None = None,
    top_k: int = 0,
    log_level: str = "info",
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    limits: ConnectionLimits | None = None,
    public: Callable[[], bytes] | None = None,
) -> None:
    """Run the API with uvicorn until interrupted (``public``: see :func:`create_app`).

    The token, when ``None``, comes from ``$REPROGRAM_SERVE_TOKEN``, else
    ``$REPROGRAM_API_TOKEN``. ``limits`` (:class:`ConnectionLimits`; default: headers within
    10 s, bodies within 30 s, connections capped from the descriptor limit) guard the
    connections, ``max_inflight`` the work (see :func:`create_app`).

    Logs a warning (``reprogram.blackbox.server``) when ``host`` is not a loopback address and
    no token is set: anyone who reaches the port could then query the model.
    """
    if token is None:
        token = os.environ.get(SERVE_TOKEN_ENV) or None
    token = resolve_token(token)
    if not is_loopback(host) and not token:
        logger.warning(
            "listening on %s without a token: anyone who reaches port %s can query the model. "
            "Set --token-file or $%s.",
            host,
            port,
            SERVE_TOKEN_ENV,
        )
    app = create_app(
        model_fn,
        info,
        token=token,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        top_k=top_k,
        max_inflight=max_inflight,
        public=public,
    )
    server = guarded_server(
        app, limits, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5
    )
    _run(server)


@contextlib.contextmanager
def running_server(
    app: Any,
    host: str = "127.0.0.1",
    start_timeout: float = 30.0,
    limits: ConnectionLimits | None = None,
) -> Iterator[str]:
    """Run ``app`` (any ASGI app) with uvicorn in a daemon thread; yields its base URL.

    The socket is bound before the thread starts (a free port chosen by the OS), so there is
    no race for the port. ``limits`` guard the connections as in :func:`serve`. The server is
    shut down when the ``with`` block ends.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = guarded_server(
        app,
        limits,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
        access_log=False,
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the test server on {host}:{port} did not start")
        time.sleep(0.01)
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    try:
        yield f"http://{url_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


__all__ = [
    "BODY_TIMEOUT",
    "DEFAULT_MAX_INFLIGHT",
    "HEADER_TIMEOUT",
    "SERVE_TOKEN_ENV",
    "TOKEN_ENV",
    "ConnectionLimits",
    "QueryCounter",
    "artifact_model",
    "create_app",
    "default_max_body_bytes",
    "guarded_server",
    "is_loopback",
    "running_server",
    "serve",
    "source_model",
]
