"""HTTP black boxes: ``reprogram serve``'s app and :class:`HttpEndpoint`, over real loopback HTTP.

Every server here is a real uvicorn server on 127.0.0.1 (a free port) in a background thread,
serving ``tiny-random-cnn`` (3×32×32 → 100 classes). Faults are injected by an ASGI middleware
that misbehaves on purpose for the first N ``/predict`` requests. Retry delays are tiny.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from helpers import read_predict

from reprogram.blackbox import EndpointError
from reprogram.blackbox.http import HttpEndpoint, retry_after_seconds
from reprogram.blackbox.server import create_app, running_server, source_model
from reprogram.blackbox.wire import request_body
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.sources import build_source

TOKEN = "s3cret-token"
K = 100
SHAPE = (3, 32, 32)
FAST = {"backoff": 0.001, "timeout": 5.0}


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    """``(model_fn, info)`` of ``tiny-random-cnn``."""
    return source_model(build_source("tiny-random-cnn"))


def reference(tiny: tuple[Any, Any], x: np.ndarray) -> np.ndarray:
    """The in-process answer: probabilities ``[B, K]``."""
    with torch.no_grad():
        return tiny[0](torch.from_numpy(x)).numpy()


def pixels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


@pytest.fixture(scope="module")
def server(tiny: tuple[Any, Any]) -> Iterator[tuple[str, Any]]:
    """A token-protected server (max 16 inputs a request); yields ``(url, app)``."""
    app = create_app(*tiny, token=TOKEN, max_batch=16)
    with running_server(app) as url:
        yield url, app


# --------------------------------------------------------------------------- fault injection
class Faults:
    """ASGI middleware: ``/predict`` request number ``i`` misbehaves as ``plan[i]`` says.

    Requests past the plan (or planned ``None``) reach the real app. Faults: ``slow`` (answers
    after ``slow_seconds``), ``500``, ``drop`` (closes the connection mid-answer), ``malformed``
    (broken JSON), ``wrong_shape`` (``[b + 1, K]``), ``nan``, ``unnormalised`` (rows sum to 2),
    ``429`` (with ``Retry-After: retry_after``) and ``422``.
    """

    def __init__(
        self, app: Any, plan: list[str | None], slow_seconds: float = 1.0, retry_after: str = "1"
    ) -> None:
        self.app, self.plan = app, plan
        self.slow_seconds, self.retry_after = slow_seconds, retry_after
        self.seen = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        with self._lock:
            i, self.seen = self.seen, self.seen + 1
        fault = self.plan[i] if i < len(self.plan) else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        body, b = await read_predict(scope, receive)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
            await self.app(scope, _replay(body), send)
        elif fault == "500":
            await _send(send, 500, b'{"detail": "injected failure"}')
        elif fault == "drop":
            head = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": b'{"probab', "more_body": True})
            raise ConnectionAbortedError("injected drop")
        elif fault == "malformed":
            await _send(send, 200, b'{"probabilities": {"shape": [')
        elif fault in ("wrong_shape", "nan", "unnormalised"):
            probs = np.full((b + (fault == "wrong_shape"), K), 1.0 / K, dtype=np.float32)
            probs[0, 0] = np.nan if fault == "nan" else probs[0, 0] + (fault == "unnormalised")
            payload = {
                "probabilities": {
                    "shape": list(probs.shape),
                    "dtype": "float32",
                    "data": base64.b64encode(probs.tobytes()).decode(),
                }
            }
            await _send(send, 200, json.dumps(payload).encode())
        elif fault == "429":
            await _send(send, 429, b'{"detail": "slow down"}', [(b"retry-after", self.retry_after)])
        elif fault == "422":
            await _send(send, 422, b'{"detail": "injected rejection"}')
        else:
            raise AssertionError(f"unknown fault {fault}")


def _replay(body: bytes) -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send(send: Any, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    extra = [(k, v.encode() if isinstance(v, str) else v) for k, v in headers or []]
    head = [(b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def faulty(tiny: tuple[Any, Any]) -> Iterator[Any]:
    """``start(plan, **faults_kwargs)`` → ``(url, app, faults)`` of a fresh faulty server."""
    with_servers: list[Any] = []

    def start(plan: list[str | None], **kwargs: Any) -> tuple[str, Any, Faults]:
        app = create_app(*tiny, max_batch=16)
        faults = Faults(app, plan, **kwargs)
        context = running_server(faults)
        url = context.__enter__()
        with_servers.append(context)
        return url, app, faults

    yield start
    for context in with_servers:
        context.__exit__(None, None, None)


# --------------------------------------------------------------------------- answers and counts
def test_answers_equal_the_in_process_model_in_order(
    server: tuple[str, Any], tiny: tuple[Any, Any]
) -> None:
    url, _ = server
    x = pixels(11)
    with HttpEndpoint(url, TOKEN, max_batch=3, concurrency=3, **FAST) as ep:
        assert ep.batch_per_request == 3
        got = ep(x)
        stats = ep.stats()
    assert got.dtype == np.float32 and got.shape == (11, K)
    np.testing.assert_allclose(got, reference(tiny, x), rtol=0, atol=1e-6)
    assert stats["requests_sent"] == 4 and stats["retries"] == 0
    assert stats["queries_sent"] == stats["queries_answered"] == 11


def test_info_comes_from_health(server: tuple[str, Any]) -> None:
    url, _ = server
    source = build_source("tiny-random-cnn")
    with HttpEndpoint(url + "/", TOKEN, **FAST) as ep:
        info = ep.info
        assert ep.batch_per_request == 16  # the server's max_batch is the default
    assert info.name == "tiny-random-cnn" and info.input_shape == SHAPE
    assert info.num_classes == K and info.label_names == tuple(source.label_names)
    assert info.fingerprint == source.fingerprint() and info.top_k == 0


def test_client_and_server_query_counts_agree_exactly(tiny: tuple[Any, Any]) -> None:
    app = create_app(*tiny, max_batch=8)
    with running_server(app) as url, HttpEndpoint(url, max_batch=5, concurrency=2, **FAST) as ep:
        for n in (1, 7, 20, 0, 3):
            ep(pixels(n, seed=n))
        health = httpx.get(url + "/health").json()
        stats = ep.stats()
    assert stats["queries_answered"] == 31
    assert app.state.queries.value == 31 == health["queries_served"]
    assert stats["server_queries_served"] == 31


def test_token_from_the_environment(
    server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, tiny: tuple[Any, Any]
) -> None:
    monkeypatch.setenv("REPROGRAM_API_TOKEN", TOKEN)
    with HttpEndpoint(server[0], **FAST) as ep:
        np.testing.assert_allclose(ep(pixels(2)), reference(tiny, pixels(2)), atol=1e-6)


def test_uint8_wire_answers_the_quantised_pixels(
    server: tuple[str, Any], tiny: tuple[Any, Any]
) -> None:
    x = pixels(4)
    quantised = (np.rint(x * 255) / 255).astype(np.float32)
    with HttpEndpoint(server[0], TOKEN, wire_dtype="uint8", **FAST) as ep:
        got = ep(x)
    np.testing.assert_allclose(got, reference(tiny, quantised), atol=1e-5)


def test_top_k_answers_become_dense(tiny: tuple[Any, Any]) -> None:
    app = create_app(*tiny, top_k=5)
    x = pixels(6)
    with running_server(app) as url, HttpEndpoint(url, **FAST) as ep:
        assert ep.info.top_k == 5
        got = ep(x)
    ref = reference(tiny, x)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    top = np.argsort(-ref, axis=1)[:, :5]
    np.testing.assert_array_equal(np.argsort(-got, axis=1)[:, :5], top)
    np.testing.assert_allclose(
        np.take_along_axis(got, top, 1), np.take_along_axis(ref, top, 1), atol=1e-5
    )


def test_requests_are_sized_to_the_servers_body_limit(tiny: tuple[Any, Any]) -> None:
    per_input = 4 * np.prod(SHAPE)
    app = create_app(*tiny, max_body_bytes=int(2.5 * per_input * 4 / 3) + 512)
    x = pixels(5)
    with running_server(app) as url, HttpEndpoint(url, wire="json", **FAST) as ep:
        assert ep.batch_per_request == 2
        np.testing.assert_allclose(ep(x), reference(tiny, x), atol=1e-6)
        assert ep.stats()["requests_sent"] == 3


def test_empty_batch_and_bad_pixels_send_nothing(server: tuple[str, Any]) -> None:
    with HttpEndpoint(server[0], TOKEN, **FAST) as ep:
        assert ep(np.zeros((0, *SHAPE), np.float32)).shape == (0, K)
        bad = pixels(2)
        for x in (bad[:, :2], bad * 2, np.full_like(bad, np.nan)):
            with pytest.raises(ReprogramError, match=r"shape|lie in|NaN"):
                ep(x)
        assert ep.stats()["requests_sent"] == 0


# --------------------------------------------------------------------------- faults and retries
FAULTS = ["slow", "500", "drop", "malformed", "wrong_shape", "nan", "unnormalised", "429"]


@pytest.mark.parametrize("fault", FAULTS)
def test_faults_are_survived_by_retries(fault: str, faulty: Any, tiny: tuple[Any, Any]) -> None:
    url, app, faults = faulty([fault, fault], slow_seconds=2.0, retry_after="0.01")
    sleeps: list[float] = []
    x = pixels(3)
    timeout = 1.0 if fault == "slow" else 5.0  # the good answer must come within the timeout
    with HttpEndpoint(url, retries=3, backoff=0.001, timeout=timeout, sleep=sleeps.append) as ep:
        got = ep(x)
        stats = ep.stats()
    np.testing.assert_allclose(got, reference(tiny, x), atol=1e-6)
    assert faults.seen == 3 and len(sleeps) == 2
    assert stats["requests_sent"] == 3 and stats["retries"] == 2
    assert stats["queries_answered"] == 3 and stats["queries_sent"] == 9
    if fault == "slow":  # a slow answer still reaches the model: abandoned queries may count
        assert 3 <= app.state.queries.value <= stats["queries_sent"]
    else:
        assert app.state.queries.value == 3  # the other faults never reached the model
    if fault == "429":
        assert sleeps == [0.01, 0.01]  # Retry-After, not the backoff
    else:
        assert all(0.0005 <= s <= 0.002 for s in sleeps), sleeps  # backoff 0.001 × 2^k × jitter


def test_429_retry_after_is_waited_for(faulty: Any, tiny: tuple[Any, Any]) -> None:
    url, _, _ = faulty(["429"], retry_after="0.3")
    with HttpEndpoint(url, retries=2, backoff=0.0, timeout=5.0) as ep:
        start = time.monotonic()
        ep(pixels(1))
        waited = time.monotonic() - start
    assert waited >= 0.3


def test_backoff_grows_exponentially_with_jitter(faulty: Any) -> None:
    url, _, _ = faulty(["500"] * 4)
    sleeps: list[float] = []
    with HttpEndpoint(url, retries=4, backoff=0.01, max_backoff=0.05, sleep=sleeps.append) as ep:
        ep(pixels(1))
    assert len(sleeps) == 4
    for k, s in enumerate(sleeps):
        cap = min(0.05, 0.01 * 2**k)
        assert cap / 2 <= s <= cap, (k, s)


def test_persistent_failure_ends_in_a_clear_endpoint_error(faulty: Any) -> None:
    url, app, faults = faulty(["500"] * 10)
    with HttpEndpoint(url, retries=2, **FAST) as ep:
        with pytest.raises(EndpointError, match=r"after 3 attempts.*HTTP 500.*injected failure"):
            ep(pixels(2))
        assert ep.stats()["requests_sent"] == 3 and ep.stats()["queries_answered"] == 0
    assert faults.seen == 3 and app.state.queries.value == 0


def test_persistent_timeouts_end_in_an_endpoint_error(faulty: Any) -> None:
    url, _, _ = faulty(["slow"] * 3, slow_seconds=1.0)
    with HttpEndpoint(url, retries=1, backoff=0.001, timeout=0.2) as ep:
        with pytest.raises(EndpointError, match=r"after 2 attempts.*timed out"):
            ep(pixels(1))


def test_a_failed_request_in_a_split_batch_fails_the_call(faulty: Any) -> None:
    url, _, _ = faulty(["500"] * 10)
    with HttpEndpoint(url, retries=1, max_batch=2, concurrency=2, **FAST) as ep:
        with pytest.raises(EndpointError, match="HTTP 500"):
            ep(pixels(6))


def test_other_4xx_is_not_retried(faulty: Any) -> None:
    url, _, faults = faulty(["422"])
    with HttpEndpoint(url, retries=5, **FAST) as ep:
        with pytest.raises(EndpointError, match="HTTP 422: injected rejection"):
            ep(pixels(1))
        assert ep.stats()["requests_sent"] == 1 and ep.stats()["retries"] == 0
    assert faults.seen == 1


def test_unreachable_server(tiny: tuple[Any, Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(EndpointError, match=r"after 2 attempts.*connection failed"):
            HttpEndpoint(f"http://127.0.0.1:{port}", retries=1, **FAST)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


# --------------------------------------------------------------------------- the server's guards
def test_wrong_or_missing_token_is_401_and_not_retried(
    server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = server
    monkeypatch.delenv("REPROGRAM_API_TOKEN", raising=False)
    for token in ("wrong", None):
        with pytest.raises(EndpointError, match=r"HTTP 401.*bearer token"):
            HttpEndpoint(url, token, retries=3, **FAST)
    body = request_body(pixels(1))
    before = app.state.queries.value
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.post(url + "/predict", content=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(url + "/health", headers=headers).status_code == 401
    assert app.state.queries.value == before


def test_oversized_body_is_413(tiny: tuple[Any, Any]) -> None:
    app = create_app(*tiny, max_body_bytes=20_000)
    body = request_body(pixels(2))  # ~33 kB
    assert len(body) > 20_000
    with running_server(app) as url:
        r = httpx.post(url + "/predict", content=body)
        assert r.status_code == 413 and "at most 20000" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the size is checked while reading
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        r = httpx.post(url + "/predict", content=chunks())
        assert r.status_code == 413
        assert httpx.post(url + "/predict", content=request_body(pixels(1))).status_code == 200
    assert app.state.queries.value == 1


def _raw(shape: list[int], data: bytes, dtype: str = "float32") -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype, "data": base64.b64encode(data).decode()}


GOOD = pixels(2)
BAD_INPUTS = {
    "not json": b"{nope",
    "not an object": b"[1, 2]",
    "bad base64": json.dumps({"shape": [1, *SHAPE], "dtype": "float32", "data": "@@@"}).encode(),
    "wrong byte count": json.dumps(_raw([2, *SHAPE], GOOD[:1].tobytes())).encode(),
    "wrong shape": json.dumps(_raw([2, 3, 16, 64], GOOD.tobytes())).encode(),
    "wrong rank": json.dumps(_raw([2 * 3, 32, 32], GOOD.tobytes())).encode(),
    "bad dtype": json.dumps(_raw([2, *SHAPE], GOOD.tobytes(), "float64")).encode(),
    "empty batch": json.dumps(_raw([0, *SHAPE], b"")).encode(),
    "batch over max_batch": json.dumps(  # uint8: small enough for the body limit
        _raw([17, *SHAPE], np.zeros((17, *SHAPE), np.uint8).tobytes(), "uint8")
    ).encode(),
    "nan": json.dumps(_raw([2, *SHAPE], np.where(GOOD > 0.5, np.nan, GOOD).tobytes())).encode(),
    "inf": json.dumps(_raw([2, *SHAPE], np.where(GOOD > 0.5, np.inf, GOOD).tobytes())).encode(),
    "above one": json.dumps(_raw([2, *SHAPE], (GOOD + 0.5).tobytes())).encode(),
    "negative": json.dumps(_raw([2, *SHAPE], (GOOD - 0.5).tobytes())).encode(),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_are_422(case: str, server: tuple[str, Any]) -> None:
    url, app = server
    before = app.state.queries.value
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(url + "/predict", content=BAD_INPUTS[case], headers=headers)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert app.state.queries.value == before


def test_uint8_requests_are_divided_by_255(server: tuple[str, Any], tiny: tuple[Any, Any]) -> None:
    url, _ = server
    raw = np.random.default_rng(1).integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    r = httpx.post(
        url + "/predict", content=request_body(raw), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200
    got = np.frombuffer(base64.b64decode(r.json()["probabilities"]["data"]), np.float32)
    ref = reference(tiny, raw.astype(np.float32) / 255)
    np.testing.assert_allclose(got.reshape(2, K), ref, atol=1e-6)


# --------------------------------------------------------------------------- serve and the CLI
def test_serve_warns_on_a_public_host_without_a_token(
    tiny: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from reprogram.blackbox import server as server_module

    calls: list[Any] = []
    monkeypatch.setattr(server_module, "_run", lambda server: calls.append(server.config))
    monkeypatch.delenv("REPROGRAM_API_TOKEN", raising=False)
    monkeypatch.delenv("REPROGRAM_SERVE_TOKEN", raising=False)
    server_module.serve(*tiny, host="0.0.0.0", port=8123)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "without a token" in caplog.records[0].getMessage()
    caplog.clear()
    server_module.serve(*tiny, host="127.0.0.1", port=8123)
    monkeypatch.setenv("REPROGRAM_API_TOKEN", "t")
    server_module.serve(*tiny, host="0.0.0.0", port=8123)
    assert caplog.records == []
    assert [c.host for c in calls] == ["0.0.0.0", "127.0.0.1", "0.0.0.0"]


def test_cli_serve_needs_one_of_source_or_dir(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["serve"], ["serve", "somedir", "--source", "tiny-random-cnn"]):
        assert main(argv) == 2
        assert "either --source NAME" in capsys.readouterr().err


def test_cli_serve_source_and_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reprogram serve DIR`` answers the reprogrammed model's target-class probabilities."""
    from reprogram.blackbox import server as server_module
    from reprogram.model import ReprogrammedModel

    served: list[tuple[Any, Any, dict[str, Any]]] = []
    monkeypatch.setattr(
        server_module, "serve", lambda fn, info, **kw: served.append((fn, info, kw))
    )
    assert main(["serve", "--source", "tiny-random-cnn", "--top-k", "3", "--port", "9"]) == 0
    assert served[-1][1].name == "tiny-random-cnn" and served[-1][2]["top_k"] == 3

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 12)
    x = (rng.integers(0, 80, (36, 8, 8)) + 80 * y[:, None, None]).astype(np.uint8)
    np.savez(tmp_path / "task.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    out = tmp_path / "run"
    argv = ["fit", "--target", f"npz:{tmp_path / 'task.npz'}", "--source", "tiny-random-cnn"]
    assert main([*argv, "--epochs", "1", "--quiet", "--no-plots", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["serve", str(out), "--token", TOKEN]) == 0
    model_fn, info, kw = served[-1]
    assert info.input_shape == (1, 8, 8) and info.num_classes == 3 and kw["token"] == TOKEN

    model = ReprogrammedModel.from_pretrained(out)
    queries = rng.random((5, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(queries)), dim=-1).numpy()
    app = create_app(model_fn, info, token=TOKEN)
    with running_server(app) as url, HttpEndpoint(url, TOKEN, **FAST) as ep:
        np.testing.assert_allclose(ep(queries), ref, atol=1e-6)


def test_measure_throughput_compares_the_same_answers(
    server: tuple[str, Any], tiny: tuple[Any, Any]
) -> None:
    from reprogram_bench.throughput import measure_throughput

    with HttpEndpoint(server[0], TOKEN, max_batch=4, **FAST) as ep:
        result = measure_throughput(ep, lambda x: reference(tiny, x), batch=8, repeats=2)
        assert ep.stats()["queries_answered"] == 8 * 3  # one warm-up call, two timed
    assert result["batch"] == 8 and len(result["endpoint_seconds"]) == 2
    assert result["endpoint_qps"] > 0 and result["in_process_qps"] > 0
    assert result["max_abs_diff"] < 1e-6
    wrong = measure_throughput(ep_like(tiny), lambda x: reference(tiny, x) * 0, batch=2, repeats=1)
    assert wrong["max_abs_diff"] > 0


def ep_like(tiny: tuple[Any, Any]) -> Any:
    """An in-process endpoint (a plain object with ``info`` and ``__call__``)."""

    class InProcess:
        info = tiny[1]

        def __call__(self, x: np.ndarray) -> np.ndarray:
            return reference(tiny, x)

    return InProcess()


def test_cli_serve_a_baseline_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reprogram.artifact import load_artifact
    from reprogram.blackbox import server as server_module

    served: list[tuple[Any, Any]] = []
    monkeypatch.setattr(server_module, "serve", lambda fn, info, **kw: served.append((fn, info)))
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 12)
    x = (rng.integers(0, 80, (36, 8, 8)) + 80 * y[:, None, None]).astype(np.uint8)
    np.savez(tmp_path / "task.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    out = tmp_path / "probe"
    argv = ["baseline", "--method", "pixels-logreg", "--target", f"npz:{tmp_path / 'task.npz'}"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 0
    assert main(["serve", str(out)]) == 0
    model_fn, info = served[-1]
    assert info.name.startswith("baseline:pixels-logreg") and info.input_shape == (1, 8, 8)
    queries = torch.from_numpy(rng.random((4, 1, 8, 8), dtype=np.float32))
    model, _ = load_artifact(out)
    with torch.no_grad():
        expected = torch.softmax(model(queries), dim=-1)
        np.testing.assert_allclose(model_fn(queries).numpy(), expected.numpy(), atol=1e-6)


# --------------------------------------------------------------------------- the deadline
class TrickleServer:
    """A raw loopback HTTP server: ``/health`` answers at once; ``/predict`` trickles one byte
    every ``interval`` seconds, of its status line and headers (``where="headers"``) or of its
    body after complete headers (``where="body"``), and never finishes."""

    def __init__(self, health: bytes, where: str, interval: float = 0.1) -> None:
        self.health, self.where, self.interval = health, where, interval
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.predicts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            try:
                while not self.stop.is_set():
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536) or self._closed()
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = int(
                        next(
                            (
                                line.split(b":")[1]
                                for line in head.split(b"\r\n")
                                if line.lower().startswith(b"content-length")
                            ),
                            b"0",
                        )
                    )
                    while len(data) < length:
                        data += conn.recv(65536) or self._closed()
                    data = data[length:]
                    if head.startswith(b"GET /health"):
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(self.health), self.health)
                        )
                        continue
                    self.predicts += 1
                    if self.where == "body":
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 100000\r\n\r\n"
                        )
                        stream = b'{"probabilities": ' + b" " * 100000
                    else:
                        stream = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100000
                    for byte in stream:
                        if self.stop.wait(self.interval):
                            return
                        conn.sendall(bytes([byte]))
            except OSError:
                return

    @staticmethod
    def _closed() -> bytes:
        raise OSError("closed")

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickling_server_is_given_up_within_the_deadline(
    where: str, server: tuple[str, Any]
) -> None:
    """One byte every 0.1 s never trips the 5 s read timeout; the 1 s deadline cuts it off."""
    health = httpx.get(server[0] + "/health", headers={"Authorization": f"Bearer {TOKEN}"})
    trickle = TrickleServer(health.content, where)
    try:
        with HttpEndpoint(trickle.url, timeout=5.0, deadline=1.0, retries=1, backoff=0.01) as ep:
            start = time.monotonic()
            with pytest.raises(EndpointError) as info:
                ep(pixels(1))
            elapsed = time.monotonic() - start
            assert ep.stats()["requests_sent"] == 2 and ep.stats()["retries"] == 1
    finally:
        trickle.close()
    assert trickle.predicts == 2
    assert elapsed < 2 * 1.0 + 2.0  # two attempts of at most 1 s each, plus slack
    message = str(info.value)
    assert "after 2 attempts" in message and "deadline of 1 s" in message
    assert "#timeout=" in message and "deadline=" in message and "retries=" in message


def test_http_source_options_follow_a_hash(server: tuple[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setenv("REPROGRAM_API_TOKEN", TOKEN)
    source = build_source(server[0] + "#timeout=7,deadline=9.5,retries=2,max_batch=3")
    ep = source.endpoint
    try:
        assert (ep.timeout, ep.deadline, ep.retries, ep.batch_per_request) == (7.0, 9.5, 2, 3)
        assert ep.url == server[0] and source.name.endswith(
            "#timeout=7,deadline=9.5,retries=2,max_batch=3"
        )
    finally:
        ep.close()
    with pytest.raises(ReprogramError, match=r"has no option tmeout.*timeout, deadline"):
        build_source(server[0] + "#tmeout=7")
    with pytest.raises(ReprogramError, match="malformed option"):
        build_source(server[0] + "#timeout")
    with pytest.raises(ReprogramError, match="not a valid float"):
        build_source(server[0] + "#deadline=soon")


# --------------------------------------------------------------------------- binary bodies
def test_binary_is_used_when_offered_and_answers_equal_json(
    server: tuple[str, Any], tiny: tuple[Any, Any]
) -> None:
    x = pixels(7)
    with HttpEndpoint(server[0], TOKEN, max_batch=3, **FAST) as auto:
        assert auto.binary  # /health lists "safetensors": the default (auto) takes it
        got = auto(x)
        assert auto.stats()["server_queries_served"] is not None  # X-Queries-Served
    with HttpEndpoint(server[0], TOKEN, max_batch=3, wire="json", **FAST) as plain:
        assert not plain.binary
        np.testing.assert_array_equal(plain(x), got)
    np.testing.assert_allclose(got, reference(tiny, x), atol=1e-6)
    with HttpEndpoint(server[0], TOKEN, wire="binary", wire_dtype="uint8", **FAST) as small:
        quantised = (np.rint(x * 255) / 255).astype(np.float32)
        np.testing.assert_allclose(small(x), reference(tiny, quantised), atol=1e-5)


def test_binary_top_k_answers_become_dense(tiny: tuple[Any, Any]) -> None:
    app = create_app(*tiny, top_k=4)
    x = pixels(5)
    with running_server(app) as url:
        with HttpEndpoint(url, wire="binary", **FAST) as ep, HttpEndpoint(url, wire="json") as js:
            np.testing.assert_allclose(ep(x), js(x), atol=1e-6)


def test_binary_requests_are_checked_and_answered_as_asked(server: tuple[str, Any]) -> None:
    from safetensors.numpy import load, save

    url, app = server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    binary = {**auth, "Content-Type": "application/octet-stream"}
    body = save({"pixels": pixels(2)})
    r = httpx.post(url + "/predict", content=body, headers=binary)  # no Accept: JSON answer
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    r = httpx.post(
        url + "/predict", content=body, headers={**binary, "Accept": "application/octet-stream"}
    )
    assert r.headers["content-type"] == "application/octet-stream"
    assert load(r.content)["probabilities"].shape == (2, K)
    assert int(r.headers["x-queries-served"]) == app.state.queries.value
    before = app.state.queries.value
    bad = {
        "not safetensors": b"\x00" * 64,
        "truncated": body[: len(body) // 2],
        "other name": save({"x": pixels(1)}),
        "two tensors": save({"pixels": pixels(1), "more": pixels(1)}),
        "float64": save({"pixels": pixels(1).astype(np.float64)}),
        "wrong shape": save({"pixels": np.zeros((1, 3, 8, 8), np.float32)}),
        "nan": save({"pixels": np.full((1, *SHAPE), np.nan, np.float32)}),
    }
    for case, content in bad.items():
        r = httpx.post(url + "/predict", content=content, headers=binary)
        assert r.status_code == 422, (case, r.text)
    assert app.state.queries.value == before


def test_a_server_without_binary_gets_json(tiny: tuple[Any, Any]) -> None:
    """A server whose /health lists no encodings (an older one) is spoken to in JSON."""

    app = create_app(*tiny)

    async def older(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/health":
            if (b"content-type", b"application/octet-stream") in scope["headers"]:
                await _send(send, 422, b'{"detail": "JSON only"}')
                return
            await app(scope, receive, send)
            return
        health = app.state.info
        payload = {
            "name": health.name,
            "input_shape": list(SHAPE),
            "num_classes": K,
            "top_k": 0,
            "max_batch": 8,
            "max_body_bytes": 10**7,
        }
        await _send(send, 200, json.dumps(payload).encode())

    with running_server(older) as url:
        with HttpEndpoint(url, **FAST) as ep:
            assert not ep.binary
            np.testing.assert_allclose(ep(pixels(3)), reference(tiny, pixels(3)), atol=1e-6)
        with pytest.raises(EndpointError, match="does not offer binary"):
            HttpEndpoint(url, wire="binary", **FAST)
