"""``reprogram serve`` against hostile or careless clients (issue 34, item 3).

Every connection here is to 127.0.0.1; every wait is bounded (socket timeouts, deadlines), and
the one subprocess server is terminated (then killed) when its test ends. What is covered:
header and body deadlines, the connection cap under a lowered file-descriptor limit, the
bound on work in flight, deeply nested JSON, and where the token comes from.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from reprogram.blackbox.protocol import EndpointInfo
from reprogram.blackbox.server import ConnectionLimits, create_app, running_server
from reprogram.blackbox.wire import request_body
from reprogram.cli import main

TOKEN = "hardening-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INFO = EndpointInfo(
    name="two-class", input_shape=(1, 2, 2), num_classes=2, label_names=("a", "b"), fingerprint="x"
)
SHORT = ConnectionLimits(header_timeout=1.0, body_timeout=1.0)


def uniform(x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0], 2), 0.5)


def body(n: int = 1) -> bytes:
    return request_body(np.full((n, 1, 2, 2), 0.5, dtype=np.float32))


@pytest.fixture(scope="module")
def short_server() -> Iterator[str]:
    """A token-protected server with 1 s header and body deadlines; yields ``host:port``."""
    app = create_app(uniform, INFO, token=TOKEN, max_body_bytes=1_000_000)  # room for deep JSON
    with running_server(app, limits=SHORT) as url:
        yield url.removeprefix("http://")


def connect(hostport: str) -> socket.socket:
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def seconds_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[float, bytes]:
    """Read until the server closes ``sock``; returns (seconds it took, bytes received)."""
    start = time.monotonic()
    got = b""
    sock.settimeout(limit)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open for {limit}s") from None
        if not chunk:
            break
        got += chunk
    return time.monotonic() - start, got


def read_response(sock: socket.socket) -> bytes:
    """One HTTP response (head and ``Content-Length`` body) from ``sock`` (5 s at most)."""
    sock.settimeout(5)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {got!r}"
        got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {got!r}"
        rest += chunk
    return head + b"\r\n\r\n" + rest


# --------------------------------------------------------------------------- deadlines
def test_half_a_header_line_is_closed_within_the_header_timeout(short_server: str) -> None:
    with connect(short_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nAuthoriz")
        took, got = seconds_until_closed(sock)
    assert got == b"" and 0.5 < took < 3.0


def test_a_silent_connection_is_closed_within_the_header_timeout(short_server: str) -> None:
    with connect(short_server) as sock:
        took, got = seconds_until_closed(sock)
    assert got == b"" and 0.5 < took < 3.0


def test_a_stalled_body_is_closed_within_the_body_timeout(short_server: str) -> None:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(short_server) as sock:
        sock.sendall(head.encode() + b'{"pixels": [')
        took, got = seconds_until_closed(sock)
    assert got == b"" and 0.5 < took < 3.0


def test_an_unauthenticated_stalled_body_gets_401_and_is_closed(short_server: str) -> None:
    head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with connect(short_server) as sock:
        sock.sendall(head.encode() + b"{")
        took, got = seconds_until_closed(sock)
    assert got.startswith(b"HTTP/1.1 401") and took < 3.0


def test_slow_but_timely_requests_are_served(short_server: str) -> None:
    """Headers trickled within the deadline, and a kept-alive connection, both work."""
    with connect(short_server) as sock:
        for part in (
            b"GET /health HTTP/1.1\r\n",
            b"Host: x\r\n",
            f"Authorization: Bearer {TOKEN}".encode(),
        ):
            sock.sendall(part)
            time.sleep(0.25)
        sock.sendall(b"\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # then a second request on the same connection, body in two parts
        payload = body()
        head = (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + payload[:5])
        time.sleep(0.4)
        sock.sendall(payload[5:])
        assert read_response(sock).startswith(b"HTTP/1.1 200")


# --------------------------------------------------------------------------- inputs and work
def test_deeply_nested_json_is_422_with_a_json_body(short_server: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    r = httpx.post(f"http://{short_server}/predict", content=nested, headers=AUTH, timeout=10)
    assert r.status_code == 422
    assert "nested too deeply" in r.json()["detail"]


def test_work_in_flight_is_bounded_with_503_and_retry_after() -> None:
    release, entered = threading.Event(), threading.Event()

    def blocking(x: torch.Tensor) -> torch.Tensor:
        entered.set()
        release.wait(10)
        return uniform(x)

    app = create_app(blocking, INFO, max_inflight=1)
    with running_server(app) as url:
        first: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: first.append(httpx.post(f"{url}/predict", content=body(), timeout=10))
        )
        worker.start()
        try:
            assert entered.wait(10)
            r = httpx.post(f"{url}/predict", content=body(), timeout=10)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "busy" in r.json()["detail"]
        finally:
            release.set()
            worker.join(10)
        assert first[0].status_code == 200
        assert httpx.post(f"{url}/predict", content=body(), timeout=10).status_code == 200


def test_a_client_that_stops_reading_is_dropped_within_the_write_timeout() -> None:
    """A large answer the client never reads: the connection is aborted after the write
    timeout (not held while the send buffer waits), and its slot of the work in flight is
    free again (max_inflight=1: the next /predict is answered)."""
    classes = 50_000  # 256 rows × 50,000 probabilities: tens of MB, far over any socket buffer
    wide = EndpointInfo(
        name="wide", input_shape=(1, 2, 2), num_classes=classes,
        label_names=tuple(f"c{i}" for i in range(classes)), fingerprint="w",
    )
    app = create_app(
        lambda x: torch.full((x.shape[0], classes), 1.0 / classes), wide, max_inflight=1
    )
    limits = ConnectionLimits(header_timeout=30, body_timeout=30, write_timeout=1.0)
    payload = body(256)
    head = (
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    with running_server(app, limits=limits) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, hold little
        sock.settimeout(10)
        sock.connect((host, int(port)))
        with sock:
            sock.sendall(head.encode() + payload)
            time.sleep(4.0)  # computing the answer, then 1 s of not reading it
            got, reset, until = b"", False, time.monotonic() + 10
            while time.monotonic() < until:  # the old server trickled it all out, slowly
                try:
                    chunk = sock.recv(1 << 20)
                except ConnectionResetError:
                    reset = True
                    break
                if not chunk:
                    break
                got += chunk
        head_got, _, rest = got.partition(b"\r\n\r\n")
        match = re.search(rb"(?i)content-length: *(\d+)", head_got)
        assert match is not None, got[:200]
        assert time.monotonic() < until, "the connection was still open 10 s later"
        assert reset or len(rest) < int(match.group(1)), "the whole answer waited for the reader"
        r = httpx.post(f"{url}/predict", content=body(), timeout=10)
        assert r.status_code == 200


def test_connection_cap_sheds_the_oldest_stalled_connection() -> None:
    limits = ConnectionLimits(header_timeout=30, body_timeout=30, max_connections=8, backlog=16)
    with running_server(create_app(uniform, INFO, token=TOKEN), limits=limits) as url:
        hostport = url.removeprefix("http://")
        stalled = [connect(hostport) for _ in range(20)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /health HTTP/1.1\r\n")
            time.sleep(0.3)
            r = httpx.get(f"{url}/health", headers=AUTH, timeout=5)
            assert r.status_code == 200
            closed = 0
            for sock in stalled:
                sock.settimeout(0.2)
                try:
                    closed += sock.recv(1) == b""
                except ConnectionResetError:
                    closed += 1
                except TimeoutError:
                    pass
            assert closed >= 12  # the oldest were shed; at most 8 stay open
        finally:
            for sock in stalled:
                sock.close()


# --------------------------------------------------------------------------- the fd limit
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lower_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.mark.parametrize(
    ("flags", "how"),
    [
        ([], "shed (stalled, to make room)"),  # the default cap, sized from the limit (128)
        # a cap above the limit: accept() does fail, and the stalled connections are shed then
        (["--max-connections", "1000", "--header-timeout", "30"], "shed (out of file descr"),
    ],
    ids=["default-cap", "cap-above-the-limit"],
)
def test_health_is_answered_under_a_flood_with_a_256_descriptor_limit(
    tmp_path: Path, flags: list[str], how: str
) -> None:
    """300 stalled, unauthenticated connections against a server limited to 256 descriptors:
    an authenticated /health is still answered within seconds, and the log has no flood of
    failed accepts (and no traceback)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    log = tmp_path / "server.log"
    code = "import sys; from reprogram.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "serve", "--source", "tiny-random-cnn"]
    argv += ["--port", str(port), "--token-file", str(token_file), *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPROGRAM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    url = f"http://127.0.0.1:{port}"
    stalled: list[socket.socket] = []
    with open(log, "wb") as out:
        server = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=lower_fd_limit
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start in 90 s"
            try:
                if httpx.get(f"{url}/health", headers=AUTH, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        start = time.monotonic()
        for _ in range(300):
            if time.monotonic() - start > 90:  # a small accept queue: SYNs retried after 1 s
                break
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=3)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Stalled: ")
            except OSError:  # refused or reset: the server shedding, fine
                continue
            stalled.append(sock)
        opened = time.monotonic() - start
        assert len(stalled) > 256, f"only {len(stalled)} connections opened in {opened:.1f}s"
        start = time.monotonic()
        r = httpx.get(f"{url}/health", headers=AUTH, timeout=10)
        answered = time.monotonic() - start
        assert r.status_code == 200 and r.json()["name"] == "tiny-random-cnn"
        assert answered < 5.0, f"/health took {answered:.2f}s"
        assert server.poll() is None
    finally:
        for sock in stalled:
            sock.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    text = log.read_text()
    accept_errors = len(re.findall(r"out of system resource|Too many open files", text))
    print(f"opened 300 stalled connections in {opened:.2f}s; /health in {answered:.3f}s")
    print(f"accept errors logged: {accept_errors}; log tail:\n{text[-1500:]}")
    assert accept_errors <= 3 and "Traceback" not in text
    assert how in text


# --------------------------------------------------------------------------- the token
def test_token_from_a_file_the_environment_and_a_warning_for_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.blackbox import server as server_module

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(server_module, "serve", lambda fn, info, **kw: served.append(kw))
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\nignored\n")
    token_file.chmod(0o600)
    base = ["serve", "--source", "tiny-random-cnn"]

    assert main([*base, "--token-file", str(token_file)]) == 0
    assert served[-1]["token"] == "from-a-file" and "warning" not in capsys.readouterr().err

    token_file.chmod(0o644)
    assert main([*base, "--token-file", str(token_file)]) == 0
    assert "can be read by other users" in capsys.readouterr().err

    assert main([*base, "--token", "on-the-line"]) == 0
    assert served[-1]["token"] == "on-the-line"
    err = capsys.readouterr().err
    assert "warning" in err and "visible to other users" in err and "--token-file" in err

    assert main([*base]) == 0
    assert served[-1]["token"] is None  # serve() then reads the environment

    for bad in (
        [*base, "--token", "t", "--token-file", str(token_file)],
        [*base, "--token-file", str(tmp_path / "missing")],
    ):
        assert main(bad) == 2
    (tmp_path / "empty").write_text("\n")
    assert main([*base, "--token-file", str(tmp_path / "empty")]) == 2
    assert "first line is empty" in capsys.readouterr().err


def test_serve_reads_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from reprogram.blackbox import server as server_module

    servers: list[Any] = []
    monkeypatch.setattr(server_module, "_run", servers.append)
    monkeypatch.delenv("REPROGRAM_API_TOKEN", raising=False)
    monkeypatch.setenv("REPROGRAM_SERVE_TOKEN", "from-serve-env")
    server_module.serve(uniform, INFO)
    monkeypatch.delenv("REPROGRAM_SERVE_TOKEN")
    monkeypatch.setenv("REPROGRAM_API_TOKEN", "from-api-env")
    server_module.serve(uniform, INFO)
    for server, token in zip(servers, ("from-serve-env", "from-api-env"), strict=True):
        with running_server(server.config.app) as url:
            assert httpx.get(f"{url}/health", timeout=5).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{url}/health", headers=auth, timeout=5).status_code == 200


def test_serve_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["serve", "--source", "tiny-random-cnn"]
    for flags in (
        ["--header-timeout", "0"],
        ["--body-timeout", "nan"],
        ["--max-inflight", "0"],
        ["--max-connections", "-1"],
    ):
        assert main([*base, *flags]) == 2
    assert "--max-inflight" in capsys.readouterr().err
