"""The query-only HTTP API itself: the FastAPI app and what it serves.

:func:`create_app` builds the API that :class:`reprogram.blackbox.http.HttpEndpoint` queries
around any ``model_fn`` (pixels ``[B, C, H, W]`` in ``[0, 1]`` → probabilities ``[B, K]``,
torch, run without gradients, one call at a time; the wire format is described in
:mod:`reprogram.blackbox.http`); :func:`source_model` and :func:`artifact_model` make the
``model_fn`` of a registered source or of a trained artifact. Running the app, and guarding
its connections, is :mod:`reprogram.blackbox.server`'s job.

What the app guards:
- a bearer token (``Authorization: Bearer T``; 401 when missing or wrong; compared in constant
  time) when one is set, for ``/predict`` and ``/health`` alike;
- the body size (413 from ``Content-Length`` before reading anything, and again while reading
  a body that does not declare its length);
- the work in flight: at most ``max_inflight`` authenticated ``/predict`` requests are read,
  decoded or answered at once (503 with ``Retry-After`` beyond);
- the inputs (422: not JSON or JSON nested too deeply, bad base64, a shape other than
  ``[B, *input_shape]``, ``B`` over ``max_batch``, NaN/inf, values outside ``[0, 1]``; a
  language model's rows: a width other than ``D + 1``, more positions than it takes, a mask
  column with values other than 0 and 1 or without a real position);
- a thread-safe count of queries served (one input answered = one query).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

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
    binary_body,
    binary_pixels,
    check_rows,
    check_unit_range,
    decode_array,
    encode_array,
    input_key,
    max_inputs_per_body,
)

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


__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "ModelFn",
    "QueryCounter",
    "artifact_model",
    "create_app",
    "default_max_body_bytes",
    "source_model",
]
