"""``reprogram serve``: run the query-only HTTP API (:mod:`reprogram.blackbox.app`) with uvicorn.

:func:`serve` runs it bound to the loopback address unless told otherwise; :func:`running_server`
runs any ASGI app in a background thread (tests, benchmarks). The app's own guards (token, body
size, work in flight, inputs) are described in :mod:`reprogram.blackbox.app`; its names are
importable from here too.

What the server adds, for the connections: a request whose headers are not complete within
``header_timeout`` seconds, or whose body is not complete within ``body_timeout``, has its
connection closed; past ``max_connections`` open connections (by default sized from the
process's file-descriptor limit) the oldest stalled one is shed, or the new one refused when
none is stalled, so that ``accept()`` never runs out of descriptors; a client that stops
reading its answer for ``write_timeout`` seconds has its connection dropped (a slow reader
cannot hold a connection, nor a slot of the work in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
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
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ReprogramError
from .app import (
    DEFAULT_MAX_INFLIGHT,
    ModelFn,
    QueryCounter,
    artifact_model,
    create_app,
    default_max_body_bytes,
    source_model,
)
from .protocol import EndpointInfo
from .wire import TOKEN_ENV, resolve_token

logger = logging.getLogger(__name__)


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
