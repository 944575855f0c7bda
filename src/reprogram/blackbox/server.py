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
- the inputs (422: not JSON, bad base64, a shape other than ``[B, *input_shape]``, ``B`` over
  ``max_batch``, NaN/inf, values outside ``[0, 1]``);
- a thread-safe count of queries served (one input answered = one query).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..artifact import PROGRAM, load_artifact
from ..errors import ReprogramError
from ..sources import Source
from .protocol import EndpointInfo
from .wire import (
    DTYPES,
    TOKEN_ENV,
    check_unit_range,
    decode_array,
    encode_array,
    max_inputs_per_body,
    resolve_token,
)

logger = logging.getLogger(__name__)

ModelFn = Callable[[torch.Tensor], torch.Tensor]


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
) -> FastAPI:
    """The FastAPI app answering ``POST /predict`` and ``GET /health``.

    Args:
        model_fn: pixels float32 ``[B, *info.input_shape]`` in ``[0, 1]`` → probabilities
            ``[B, K]``; called under ``torch.no_grad()``, never concurrently.
        info: what ``/health`` says (its ``top_k`` is replaced by ``top_k``).
        token: the bearer token clients must send; ``None`` (or empty) serves everyone.
        max_batch: most inputs one request may carry (422 beyond).
        max_body_bytes: largest request body (413 beyond); default: room for ``max_batch``
            float32 inputs.
        top_k: ``0`` answers full distributions; ``k > 0`` only the ``k`` best labels and
            their probabilities.
    The count of queries served is ``app.state.queries`` (a :class:`QueryCounter`).
    """
    shape = tuple(int(v) for v in info.input_shape)
    if max_batch < 1:
        raise ReprogramError(f"max_batch must be at least 1, got {max_batch}.")
    if not 0 <= top_k <= info.num_classes:
        raise ReprogramError(f"top_k must lie in [0, {info.num_classes}], got {top_k}.")
    if max_body_bytes is None:
        max_body_bytes = default_max_body_bytes(max_batch, shape)
    if max_inputs_per_body(max_body_bytes, shape, 1) < 1:
        raise ReprogramError(
            f"max_body_bytes={max_body_bytes} leaves no room for one input of shape {list(shape)}."
        )
    info = dataclasses.replace(info, input_shape=shape, top_k=top_k)
    expected = hashlib.sha256(f"Bearer {token}".encode()).digest() if token else None
    counter = QueryCounter()
    model_lock = threading.Lock()

    app = FastAPI(
        title=f"reprogram black box: {info.name}", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.queries = counter
    app.state.info = info

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

    def parse_pixels(body: bytearray) -> torch.Tensor:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Rejected(422, f"the body is not JSON ({exc})") from None
        try:
            pixels = decode_array(payload, "the request")
        except ValueError as exc:
            raise _Rejected(422, str(exc)) from None
        if pixels.ndim != len(shape) + 1 or tuple(pixels.shape[1:]) != shape:
            raise _Rejected(
                422,
                f"shape must be [B, {', '.join(map(str, shape))}] (this model's input), got "
                f"{list(pixels.shape)}",
            )
        if not 1 <= pixels.shape[0] <= max_batch:
            raise _Rejected(
                422, f"a request carries 1 to {max_batch} inputs, this one {pixels.shape[0]}"
            )
        if pixels.dtype == np.uint8:
            x = pixels.astype(np.float32) / np.float32(255.0)
        else:
            x = pixels.copy()  # writable for torch
            try:
                check_unit_range(x, "pixel values")
            except ValueError as exc:
                raise _Rejected(422, str(exc)) from None
        return torch.from_numpy(x)

    def answer(x: torch.Tensor) -> dict[str, Any]:
        with model_lock, torch.no_grad():
            probs = model_fn(x).detach().to("cpu", torch.float32)
        if probs.shape != (x.shape[0], info.num_classes) or not torch.isfinite(probs).all():
            raise _Rejected(500, f"the model answered {list(probs.shape)} or non-finite values")
        served = counter.add(int(x.shape[0]))
        if top_k:
            scores, indices = probs.topk(top_k, dim=-1)
            out: dict[str, Any] = {
                "top_k": {"indices": indices.tolist(), "scores": scores.tolist()}
            }
        else:
            out = {"probabilities": encode_array(probs.contiguous().numpy())}
        out["queries_served"] = served
        return out

    def refuse(exc: _Rejected) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.get("/health")
    async def health(request: Request) -> Response:
        try:
            authorise(request)
        except _Rejected as exc:
            return refuse(exc)
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
                "queries_served": counter.value,
            }
        )

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        try:
            authorise(request)
            body = await read_body(request)
            # one worker-thread hop for decoding and the model (neither blocks the event loop)
            out = await run_in_threadpool(lambda: answer(parse_pixels(body)))
        except _Rejected as exc:
            return refuse(exc)
        # json.dumps of the base64 string is cheap next to the model; no pydantic on the way.
        return Response(json.dumps(out), media_type="application/json")

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

    Works for ``fit`` and ``baseline`` artifacts alike. The inputs are the target's
    (``config.json``'s ``target.input_shape``, values in ``[0, 1]``); the fingerprint hashes
    the source's weight fingerprint with the trained tensors.
    """
    from pathlib import Path

    model, config = load_artifact(directory)
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
) -> None:
    """Run the API with uvicorn until interrupted (token from ``$REPROGRAM_API_TOKEN`` if None).

    Logs a warning (``reprogram.blackbox.server``) when ``host`` is not a loopback address and
    no token is set: anyone who reaches the port could then query the model.
    """
    token = resolve_token(token)
    if not is_loopback(host) and not token:
        logger.warning(
            "listening on %s without a token: anyone who reaches port %s can query the model. "
            "Set --token or $%s.",
            host,
            port,
            TOKEN_ENV,
        )
    app = create_app(
        model_fn,
        info,
        token=token,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        top_k=top_k,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


@contextlib.contextmanager
def running_server(app: Any, host: str = "127.0.0.1", start_timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` (any ASGI app) with uvicorn in a daemon thread; yields its base URL.

    The socket is bound before the thread starts (a free port chosen by the OS), so there is
    no race for the port. The server is shut down when the ``with`` block ends.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False
    )
    server = uvicorn.Server(config)
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
    "TOKEN_ENV",
    "QueryCounter",
    "artifact_model",
    "create_app",
    "default_max_body_bytes",
    "is_loopback",
    "running_server",
    "serve",
    "source_model",
]
