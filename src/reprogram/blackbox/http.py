"""A black-box source behind an HTTP API: :class:`HttpEndpoint` (client of ``reprogram serve``).

Wire format (JSON over HTTP, arrays as base64 of their raw little-endian C-order bytes; or
binary: safetensors bytes, see :mod:`reprogram.blackbox.wire` and docs/guides/blackbox-api.md):

``GET {url}/health`` →
``{"name", "input_shape": [C, H, W], "num_classes": K, "label_names": [...], "top_k": k,
"fingerprint", "max_batch", "max_body_bytes", "dtypes", "encodings", "queries_served"}``

``POST {url}/predict`` with
``{"shape": [B, C, H, W], "dtype": "float32" | "uint8", "data": "<base64>"}`` (float32 values in
``[0, 1]``; uint8 values are divided by 255) →
``{"probabilities": {"shape": [B, K], "dtype": "float32", "data": "<base64>"},
"queries_served": N}``, or in top-k mode
``{"top_k": {"indices": [[...]], "scores": [[...]]}, "queries_served": N}``.

A language model (``/health`` adds ``"kind": "language"``, ``"output"``, ``"language"`` and
``"embedding_fingerprint"``; ``input_shape`` is ``[max_positions, D]``) takes rows
``{"shape": [B, T, D + 1], "dtype": "float32", ...}`` (embeddings and mask) and answers
``{"outputs": {"shape": [B, K], ...}, "queries_served": N}``.

Both need ``Authorization: Bearer <token>`` when the server has a token. Errors answer
``{"detail": "..."}`` with 401 (token), 413 (body too large), 422 (bad input), 429 (slow down;
``Retry-After`` says for how long) or 5xx.

The client splits a batch into requests of at most ``max_batch`` inputs (and no more than the
server's ``max_batch`` and ``max_body_bytes`` allow), sends them over ``concurrency`` pooled
connections, keeps their order, bounds each attempt by ``timeout`` per read/write and by a total
``deadline``, retries connection errors, timeouts, 5xx, 429 and invalid
answers with exponential backoff and jitter (429 waits ``Retry-After``), and never retries
other 4xx. Every answer is checked (JSON, shape ``[b, K]``, finite, non-negative, rows summing
to one within ``1e-3``; top-k answers are made dense with :func:`dense_from_topk`).
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpcore
import httpx
import numpy as np

from ..errors import ReprogramError
from .protocol import EndpointError, EndpointInfo
from .wire import (
    BINARY_TYPE,
    JSON_TYPE,
    LANGUAGE,
    SERVED_HEADER,
    TOKEN_ENV,
    binary_body,
    check_language_rows,
    check_pixels,
    input_key,
    max_inputs_per_body,
    parse_answer,
    parse_binary_answer,
    request_body,
    resolve_token,
)

T = TypeVar("T")
WIRE_DTYPES = ("float32", "uint8")
WIRES = ("auto", "binary", "json")
#: Seconds at least for downloading a language model's public side (tens of megabytes).
PUBLIC_DEADLINE = 600.0


# --------------------------------------------------------------------------- the deadline
# httpx's timeouts bound each connect, read and write, not a request: a server that trickles
# one byte per read interval never times out. The network streams of the client's connection
# pools are wrapped so that every socket operation is also bounded by the deadline of the
# request under way in the calling thread (each attempt runs in one thread, synchronously).
_DEADLINE = threading.local()
_WRITE_CHUNK = 1 << 16  # a write is split so that a slow reader cannot stretch one send


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's deadline; ``error`` once it passed."""
    end = getattr(_DEADLINE, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the calling thread's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for i in range(0, len(view), _WRITE_CHUNK):
            chunk = view[i : i + _WRITE_CHUNK]  # a view: no copy of a large body
            self._stream.write(chunk, _bounded(timeout, httpcore.WriteTimeout))  # type: ignore[arg-type]  # httpcore's stub says bytes; sockets take any buffer

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Opens :class:`_DeadlineStream` connections (and bounds the connect by the deadline)."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _install_deadlines(client: httpx.Client) -> bool:
    """Wrap the network backend of every connection pool of ``client``; False if none found.

    httpx has no public hook for its network backend: this reaches its transports' pools
    (``HTTPTransport._pool._network_backend``, the same for proxy transports).
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    found = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            if not isinstance(backend, _DeadlineBackend):
                pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            found = True
    return found


class _Retry(Exception):
    """One attempt failed in a way worth retrying; ``wait`` overrides the backoff delay."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpEndpoint:
    """A :class:`~reprogram.blackbox.protocol.QueryEndpoint` answered by an HTTP API.

    Args:
        url: base URL of the API (``http://127.0.0.1:8000``); ``/health`` and ``/predict`` are
            appended (a trailing ``/predict`` is dropped).
        token: bearer token; ``None`` reads ``$REPROGRAM_API_TOKEN`` (never pass it on a
            command line).
        timeout: seconds for each connect, read and write of a request.
        deadline: seconds one attempt may take in all, from connecting to the last byte of the
            answer (a server that trickles bytes is cut off; the attempt is retried).
        retries: further attempts per request after the first fails in a retryable way.
        max_batch: most inputs per request (default and upper bound: what the server accepts,
            by ``max_batch`` and ``max_body_bytes``).
        concurrency: requests in flight at once (a thread pool; pooled keep-alive connections).
        backoff: first retry delay in seconds; it doubles per attempt, with jitter (×0.5–1).
        max_backoff: cap on one backoff delay.
        max_retry_after: cap on how long a 429's ``Retry-After`` is honoured.
        wire_dtype: ``"float32"`` (exact) or ``"uint8"`` (4× smaller; pixels rounded to 1/255).
        wire: body encoding: ``"auto"`` (safetensors bytes when ``/health`` lists
            ``"safetensors"`` in ``encodings``, else JSON), ``"binary"`` or ``"json"``.
        sleep: how to wait (tests pass a recorder).
        transport: an ``httpx`` transport (tests); default: real network.
        trust_env: let ``httpx`` read proxy settings from the environment.

    Counters (thread-safe, read with :meth:`stats`): ``requests_sent`` (HTTP attempts to
    ``/predict``), ``retries``, ``queries_sent`` (inputs in every attempt: what the server
    may have charged), ``queries_answered`` (inputs with a valid answer), and
    ``server_queries_served`` (the server's own count in its latest answer).

    ``meter`` (set by :class:`~reprogram.blackbox.source.BlackBoxSource` to its ledger): when
    set, ``meter.record_sent(n, retry)`` is called before every ``/predict`` attempt (it may
    raise to stop the attempt from being sent: a budget) and ``meter.record_answered(n)``
    after every valid answer.

    Raises:
        EndpointError: ``/health`` gave no valid answer after the retries, or the server's
            limits leave no room for one input.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        deadline: float = 60.0,
        retries: int = 5,
        max_batch: int | None = None,
        concurrency: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        wire_dtype: str = "float32",
        wire: str = "auto",
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        trust_env: bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ReprogramError(f"an HTTP endpoint URL starts with http:// or https://: {url!r}.")
        if not (
            retries >= 0 and concurrency >= 1 and timeout > 0 and deadline > 0 and backoff >= 0
        ):
            raise ReprogramError(
                f"HttpEndpoint needs retries >= 0, concurrency >= 1, timeout > 0, deadline > 0 "
                f"and backoff >= 0; got {retries}, {concurrency}, {timeout}, {deadline}, {backoff}."
            )
        if max_batch is not None and max_batch < 1:
            raise ReprogramError(f"max_batch must be at least 1, got {max_batch}.")
        if wire_dtype not in WIRE_DTYPES:
            raise ReprogramError(f"wire_dtype must be one of {WIRE_DTYPES}, got {wire_dtype!r}.")
        if wire not in WIRES:
            raise ReprogramError(f"wire must be one of {WIRES}, got {wire!r}.")
        base = url.rstrip("/")
        self.url = base[: -len("/predict")] if base.endswith("/predict") else base
        self.timeout, self.deadline = timeout, deadline
        self.retries, self.concurrency = retries, concurrency
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.wire_dtype = wire_dtype
        self._sleep = sleep
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.requests_sent = self.retries_made = self.queries_sent = self.queries_answered = 0
        self.server_queries_served: int | None = None
        self.meter: Any = None
        token = resolve_token(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers=headers,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
            trust_env=trust_env,
        )
        _install_deadlines(self._client)
        self._pool: ThreadPoolExecutor | None = None
        try:
            health = self._with_retries(self._get_health)
            self.info, server_batch, max_body, encodings = health
        except BaseException:
            self._client.close()
            raise
        if wire == "binary" and "safetensors" not in encodings:
            self._client.close()
            raise EndpointError(
                f"{self.url} does not offer binary bodies (its /health lists encodings "
                f"{sorted(encodings)}): use wire=json or wire=auto."
            )
        #: whether requests and answers travel as safetensors bytes (else base64 JSON)
        self.binary = wire != "json" and "safetensors" in encodings
        self.language = self.info.kind == LANGUAGE
        if self.language and wire_dtype != "float32":
            self._client.close()
            raise ReprogramError(
                f"{self.url} serves a language model: its rows travel as float32 only."
            )
        self._limits = (server_batch, max_body, max_batch or server_batch)
        # a language model's rows vary in length: sized per call (here: the shortest row)
        shape = (1, self.info.input_shape[1] + 1) if self.language else self.info.input_shape
        self.batch_per_request = self._per_request(shape)
        if self.batch_per_request < 1:
            self._client.close()
            raise EndpointError(
                f"{self.url} takes bodies of at most {max_body} bytes, too small for one input "
                f"of shape {list(shape)} ({wire_dtype})."
            )

    # ----------------------------------------------------------------------- public
    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities float32 ``[B, K]`` for pixels float32 ``[B, C, H, W]`` in ``[0, 1]``
        (a language model: features or logits ``[B, K]`` for rows float32 ``[B, T, D + 1]``).

        Raises:
            ReprogramError: pixels of the wrong shape or outside ``[0, 1]``, or invalid rows
                (nothing is sent).
            EndpointError: a request got no valid answer after the retries.
        """
        if self.language:
            x = check_language_rows(pixels, self.info.input_shape)
            n = self._per_request(x.shape[1:])
            if n < 1:
                raise ReprogramError(
                    f"{self.url} takes bodies of at most {self._limits[1]} bytes, too small for "
                    f"one row of {x.shape[1]} positions; send shorter sequences (or a shorter "
                    "prompt), or raise the server's max_body_bytes."
                )
        else:
            x = check_pixels(pixels, self.info.input_shape)
            if self.wire_dtype == "uint8":
                x = np.rint(x * 255.0).astype(np.uint8)
            n = self.batch_per_request
        chunks = [x[i : i + n] for i in range(0, len(x), n)]
        if not chunks:
            return np.zeros((0, self.info.num_classes), dtype=np.float32)
        if len(chunks) == 1 or self.concurrency == 1:
            return np.concatenate([self._predict(c) for c in chunks])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="http-endpoint")
        futures: list[Future[np.ndarray]] = [self._pool.submit(self._predict, c) for c in chunks]
        try:
            return np.concatenate([f.result() for f in futures])
        finally:
            for f in futures:
                f.cancel()  # after a failure: do not send what has not started

    def stats(self) -> dict[str, int | None]:
        """The counters (see the class docstring)."""
        with self._lock:
            return {
                "requests_sent": self.requests_sent,
                "retries": self.retries_made,
                "queries_sent": self.queries_sent,
                "queries_answered": self.queries_answered,
                "server_queries_served": self.server_queries_served,
            }

    def close(self) -> None:
        """Close the connections and the thread pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._client.close()

    def __enter__(self) -> HttpEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpEndpoint({self.url!r}, model={self.info.name!r})"

    # ----------------------------------------------------------------------- requests
    def _per_request(self, shape: tuple[int, ...]) -> int:
        """Inputs of ``shape`` one request may carry (the server's and the caller's limits)."""
        server_batch, max_body, wanted = self._limits
        itemsize = 1 if self.wire_dtype == "uint8" else 4
        fits = max_inputs_per_body(max_body, tuple(shape), itemsize, self.binary)
        return min(server_batch, fits, wanted)

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it returns, retrying on :class:`_Retry` with backoff."""
        reason = ""
        for k in range(self.retries + 1):
            try:
                return attempt()
            except _Retry as exc:
                reason = exc.reason
                if k == self.retries:
                    break
                delay = exc.wait if exc.wait is not None else self._backoff_delay(k)
                with self._lock:
                    self.retries_made += 1
                self._sleep(delay)
        raise EndpointError(
            f"{self.url} gave no valid answer after {self.retries + 1} attempts; the last "
            f"failure: {reason}. Check that the server is up and reachable, or raise the "
            f"timeout ({self.timeout:g} s per read), deadline ({self.deadline:g} s per request) "
            f"or retries ({self.retries}): as source options, "
            f"{self.url}#timeout={max(2 * self.timeout, 60):g},deadline="
            f"{max(2 * self.deadline, 120):g},retries={self.retries + 3}."
        )

    def _backoff_delay(self, attempt: int) -> float:
        """``backoff · 2^attempt`` capped at ``max_backoff``, times a jitter in ``[0.5, 1]``."""
        return min(self.max_backoff, self.backoff * 2.0**attempt) * (0.5 + 0.5 * self._rng.random())

    def public_side(self) -> bytes:
        """A served language model's public side, as :func:`~reprogram.blackbox.language.
        public_blob` packs it (``GET /language``; retried as queries are, with at least
        ``PUBLIC_DEADLINE`` seconds for the download)."""
        deadline = max(self.deadline, PUBLIC_DEADLINE)
        return self._with_retries(lambda: self._send("GET", "/language", deadline=deadline)).content

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        binary: bool = False,
        deadline: float | None = None,
    ) -> httpx.Response:
        """One HTTP attempt, bounded by the deadline (``self.deadline`` unless given);
        retryable failures become :class:`_Retry`, others EndpointError."""
        deadline = self.deadline if deadline is None else deadline
        end = time.monotonic() + deadline
        _DEADLINE.end = end
        try:
            response = self._client.request(
                method,
                self.url + path,
                content=body,
                headers=(
                    None
                    if body is None
                    else {"Content-Type": BINARY_TYPE, "Accept": BINARY_TYPE}
                    if binary
                    else {"Content-Type": JSON_TYPE, "Accept": JSON_TYPE}
                ),
            )
        except httpx.TimeoutException as exc:
            if time.monotonic() >= end:
                raise _Retry(
                    f"{method} {path} did not finish within its deadline of {deadline:g} s "
                    f"(the server answers too slowly or trickles its answer)"
                ) from None
            raise _Retry(f"{method} {path} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retry(
                f"{method} {path}: connection failed ({type(exc).__name__}: {exc})"
            ) from None
        finally:
            _DEADLINE.end = None
        status = response.status_code
        if status == 200:
            return response
        detail = _detail(response)
        if status == 429:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            raise _Retry(
                f"HTTP 429 too many requests ({detail})",
                None if wait is None else min(wait, self.max_retry_after),
            )
        if status >= 500:
            raise _Retry(f"HTTP {status} from {path} ({detail})")
        hint = {
            401: f"The server wants a valid bearer token: set ${TOKEN_ENV}",
            403: "The server refuses this token",
            413: "The request body is larger than the server accepts: pass a smaller max_batch",
            422: "The server rejected the inputs",
        }.get(status, "The request was refused")
        raise EndpointError(f"{self.url}{path} answered HTTP {status}: {detail}. {hint}.")

    def _get_health(self) -> tuple[EndpointInfo, int, int, set[str]]:
        response = self._send("GET", "/health")
        try:
            return _parse_health(response.content)
        except ValueError as exc:
            raise _Retry(f"invalid /health answer ({exc})") from None

    def _predict(self, chunk: np.ndarray) -> np.ndarray:
        """Probabilities ``[b, K]`` for one request's worth of inputs ``chunk`` ``[b, ...]``."""
        binary = self.binary
        body = binary_body({input_key(self.info): chunk}) if binary else request_body(chunk)
        attempts = 0

        def attempt() -> np.ndarray:
            nonlocal attempts
            if self.meter is not None:  # counted (and the budget checked) before it is sent
                self.meter.record_sent(len(chunk), retry=attempts > 0)
            attempts += 1
            with self._lock:
                self.requests_sent += 1
                self.queries_sent += len(chunk)
            response = self._send("POST", "/predict", body, binary)
            try:
                if response.headers.get("content-type", "").startswith(BINARY_TYPE):
                    probs = parse_binary_answer(response.content, len(chunk), self.info)
                    header = response.headers.get(SERVED_HEADER, "")
                    served = int(header) if header.isdigit() else None
                else:
                    probs, served = parse_answer(response.content, len(chunk), self.info)
            except ValueError as exc:
                raise _Retry(f"invalid /predict answer ({exc})") from None
            with self._lock:
                self.queries_answered += len(chunk)
                if served is not None:
                    self.server_queries_served = max(served, self.server_queries_served or 0)
            if self.meter is not None:
                self.meter.record_answered(len(chunk))
            return probs

        return self._with_retries(attempt)


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` message, or the start of the body."""
    try:
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            return payload["detail"]
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    text = response.text.strip()
    return text[:200] if text else "no message"


def _parse_health(content: bytes) -> tuple[EndpointInfo, int, int, set[str]]:
    """``(info, max_batch, max_body_bytes, encodings)`` from a ``/health`` body (``ValueError``
    if bad); ``encodings`` is ``{"json"}`` when the server does not list any."""
    try:
        h: Any = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None

    def integer(key: str, low: int) -> int:
        value = h.get(key) if isinstance(h, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{key!r} must be an integer >= {low}, got {value!r}")
        return value

    num_classes, top_k = integer("num_classes", 1), integer("top_k", 0)
    max_batch, max_body = integer("max_batch", 1), integer("max_body_bytes", 1)
    shape = h.get("input_shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ValueError(f"'input_shape' must be a list of positive integers, got {shape!r}")
    names = h.get("label_names") or []
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise ValueError("'label_names' must be a list of strings")
    if names and len(names) != num_classes:
        raise ValueError(f"{len(names)} label names for {num_classes} classes")
    if top_k > num_classes:
        raise ValueError(f"top_k {top_k} exceeds num_classes {num_classes}")
    kind = h.get("kind") or "image"
    if kind not in ("image", LANGUAGE):
        raise ValueError(f"'kind' must be 'image' or {LANGUAGE!r}, got {kind!r}")
    if kind == LANGUAGE and (len(shape) != 2 or top_k):
        raise ValueError(
            "a language model's 'input_shape' is [max_positions, D] and it has no top_k"
        )
    info = EndpointInfo(
        name=str(h.get("name") or "http"),
        input_shape=tuple(shape),
        num_classes=num_classes,
        label_names=tuple(names),
        top_k=top_k,
        fingerprint=str(h.get("fingerprint") or ""),
        kind=kind,
        output=str(h.get("output") or ""),
        language=str(h.get("language") or ""),
        embedding_fingerprint=str(h.get("embedding_fingerprint") or ""),
        public_side=kind == LANGUAGE and h.get("public_side") is True,
    )
    listed = h.get("encodings")
    encodings = {"json"} | ({str(v) for v in listed} if isinstance(listed, list) else set())
    return info, max_batch, max_body, encodings


__all__ = ["HttpEndpoint", "retry_after_seconds"]
