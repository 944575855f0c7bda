"""Fault injection for black-box query accounting: the client's count equals what the server
charged, through retries, a budget, a kill mid-epoch with --resume, and SIGTERM.

The server is ``reprogram serve``'s app behind a :class:`Charging` middleware that charges for
every ``/predict`` request it RECEIVES (one query per input, counted on the server side before
anything else), then misbehaves on some requests: 503 after charging, answers with short rows,
NaN probabilities or malformed JSON. The client must count what it sent, not what was answered.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import Crash, read_predict

from reprogram import FitConfig, fit
from reprogram.blackbox.protocol import EndpointInfo
from reprogram.blackbox.replay import ANSWERS_NAME
from reprogram.blackbox.server import create_app, running_server
from reprogram.blackbox.source import JOURNAL_NAME, QueryLedger
from reprogram.callbacks import Callback
from reprogram.checkpoint import CHECKPOINT_NAME
from reprogram.cli import main
from reprogram.errors import ReprogramError

K = 20
INFO = EndpointInfo(name="toy-box", input_shape=(3, 16, 16), num_classes=K)
SRC = Path(__file__).resolve().parents[1] / "src"
FAULTS = ("503", "short", "nan", "malformed")


def toy_model(pixels: torch.Tensor) -> torch.Tensor:
    """Softmax of a fixed projection of 4×4-pooled pixels."""
    weight = torch.from_numpy(np.random.default_rng(0).normal(size=(K, 48)).astype(np.float32))
    feats = torch.nn.functional.adaptive_avg_pool2d(pixels, 4).reshape(len(pixels), -1)
    return torch.softmax((feats - 0.2) @ weight.T * 4, -1)


class Charging:
    """ASGI middleware: charges every ``/predict`` request it receives, then request ``i``
    fails as ``FAULTS[(i // every) % 4]`` when ``i % every == every - 1`` (else is answered)."""

    def __init__(self, app: Any, every: int = 5) -> None:
        self.app, self.every = app, every
        self.charged = self.requests = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        body, b = await read_predict(scope, receive)
        with self._lock:
            i = self.requests
            self.requests += 1
            self.charged += b
        fault = FAULTS[(i // self.every) % 4] if i % self.every == self.every - 1 else None
        if fault is None:

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        if fault == "503":
            status, out = 503, b'{"detail": "overloaded (you were charged)"}'
        elif fault == "malformed":
            status, out = 200, b'{"probabilities": {"shape": ['
        else:
            rows = b - 1 if fault == "short" else b
            probs = np.full((rows, K), 1.0 / K, dtype=np.float32)
            if fault == "nan":
                probs[0, 0] = np.nan

            data = base64.b64encode(probs.tobytes()).decode()
            arr = {"shape": list(probs.shape), "dtype": "float32", "data": data}
            status, out = 200, json.dumps({"probabilities": arr}).encode()
        head = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": out})


@pytest.fixture
def charging() -> Iterator[tuple[str, Any, Charging]]:
    """``(url, app, charging)``: a fresh charging server; ``app.state.queries`` counts what
    the model answered."""
    app = create_app(toy_model, INFO, max_batch=16)
    middleware = Charging(app)
    with running_server(middleware) as url:
        yield url, app, middleware


def config(tmp_path: Path, url: str, name: str = "run", **kw: Any) -> FitConfig:
    base: dict[str, Any] = dict(
        source=f"{url}#backoff=0.001,retries=5",
        target="digits",
        program="coarse",
        program_options={"grid": 4},
        mapping="linear",
        optimizer="rgf",
        optimizer_options={"q": 1},
        shots=10,
        epochs=2,
        lr=0.05,
        batch_size=16,
        seed=1,
        out=str(tmp_path / name),
        progress=False,
        plots=False,
    )
    base.update(kw)
    return FitConfig(**base)


def journal_count(out: Path) -> QueryLedger:
    ledger = QueryLedger()
    assert ledger.load_journal(out / JOURNAL_NAME)
    return ledger


def test_retries_and_invalid_answers_are_counted_as_sent(
    tmp_path: Path, charging: tuple[str, Any, Charging]
) -> None:
    url, app, server = charging
    result = fit(config(tmp_path, url))
    m = result.metrics
    answered = app.state.queries.value
    assert m["queries_retried"] > 0  # every fault kind happened and was retried
    assert server.requests >= 4 * server.every
    assert m["queries"] == server.charged  # sent = charged, retries included
    assert m["queries_answered"] == answered
    assert m["queries_retried"] == server.charged - answered  # every failure was retried
    saved = json.loads((Path(result.out) / "metrics.json").read_text())
    assert (saved["queries"], saved["queries_answered"], saved["queries_retried"]) == (
        m["queries"],
        m["queries_answered"],
        m["queries_retried"],
    )
    assert sum(m["queries_by_phase"].values()) == m["queries"]
    assert journal_count(Path(result.out)).queries == server.charged


def test_the_budget_bounds_what_is_sent_retries_included(
    tmp_path: Path, charging: tuple[str, Any, Charging]
) -> None:
    url, _, server = charging
    budget = 2 * (80 * 2 + 20) + 539 + 40  # two planned epochs, the test, 40 to spare
    try:
        result = fit(config(tmp_path, url, epochs=3, query_budget=budget))
        counted = result.metrics["queries"]
    except ReprogramError as exc:  # a retry would have gone over: stopped, not sent
        assert "query budget" in str(exc) and "--query-budget" in str(exc)
        counted = journal_count(tmp_path / "run").queries
    assert server.charged <= budget
    assert counted == server.charged


class CrashMidEpoch(Callback):
    """Stands for kill -9 after epoch ``epoch``'s training steps, before its checkpoint."""

    name = "crash-mid"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: Any, epoch: int) -> None:
        if epoch == self.epoch:
            raise Crash


def test_a_kill_mid_epoch_then_resume_counts_every_query_sent(
    tmp_path: Path, charging: tuple[str, Any, Charging]
) -> None:
    url, _, server = charging
    with pytest.raises(Crash):
        fit(config(tmp_path, url, epochs=3), callbacks=[CrashMidEpoch(2)])
    at_kill = server.charged
    assert journal_count(tmp_path / "run").queries == at_kill  # the partial epoch is there
    result = fit(config(tmp_path, url, epochs=3, resume=True))
    assert server.charged > at_kill
    assert result.metrics["queries"] == server.charged  # both runs, nothing lost
    assert result.metrics["queries_retried"] > 0


def test_sigterm_stops_cleanly_and_resume_counts_every_query_sent(
    tmp_path: Path, charging: tuple[str, Any, Charging]
) -> None:
    url, _, server = charging
    out = tmp_path / "cli"
    argv = ["fit", "--source", f"{url}#backoff=0.001", "--target", "digits", "--optimizer"]
    argv += ["rgf", "--optimizer-opt", "q=1", "--program", "coarse", "--program-opt", "grid=4"]
    argv += ["--shots", "10", "--epochs", "6", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprogram.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while server.charged < 2 * 180 + 60 and proc.poll() is None:  # inside epoch 3
            assert time.monotonic() < deadline, "the child never reached epoch 3"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "--resume" in err
    assert (out / CHECKPOINT_NAME).exists()
    at_stop = server.charged
    assert journal_count(out).queries == at_stop
    assert main([*argv, "--resume"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["queries"] == server.charged > at_stop


class Outage(Charging):
    """Charges every ``/predict`` request, and answers 503 from request ``start`` on until
    ``over`` is set (an outage that bills its failed requests)."""

    def __init__(self, app: Any, start: int) -> None:
        super().__init__(app, every=10**9)
        self.start, self.over = start, False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            with self._lock:
                failing = self.requests >= self.start and not self.over
            if failing:
                _, b = await read_predict(scope, receive)
                with self._lock:
                    self.requests += 1
                    self.charged += b
                head = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 503, "headers": head})
                await send({"type": "http.response.body", "body": b'{"detail": "down"}'})
                return
        await super().__call__(scope, receive, send)


@contextlib.contextmanager
def serving(make: Any) -> Iterator[tuple[str, Any]]:
    """``(url, middleware)`` around a fresh toy server; ``make(app)`` builds the middleware."""
    app = create_app(toy_model, INFO, max_batch=16)
    middleware = make(app)
    with running_server(middleware) as url:
        yield url, middleware


def test_a_resume_after_a_kill_pays_for_no_query_twice(tmp_path: Path) -> None:
    """The answers to the partial epoch's queries are replayed on --resume: the killed and
    resumed run is charged what an uninterrupted run is, and trains the same numbers."""
    never = 10**9
    with serving(lambda app: Charging(app, every=never)) as (url, server):
        reference = fit(config(tmp_path, url, "reference", epochs=3))
        uninterrupted = server.charged
    with serving(lambda app: Charging(app, every=never)) as (url, server):
        with pytest.raises(Crash):
            fit(config(tmp_path, url, epochs=3), callbacks=[CrashMidEpoch(2)])
        assert (tmp_path / "run" / ANSWERS_NAME).stat().st_size > 0
        result = fit(config(tmp_path, url, epochs=3, resume=True))
        charged = server.charged
    m = result.metrics
    assert m["answers_replayed"] > 0
    assert charged == uninterrupted == m["queries"] == reference.metrics["queries"]
    assert m["test_accuracy"] == reference.metrics["test_accuracy"]
    assert not (tmp_path / "run" / ANSWERS_NAME).exists()  # gone with the checkpoint


def test_a_budget_spent_by_retries_mid_epoch_stops_with_a_tested_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage from epoch 2 or 3 on, whose billed retries use up the training part of the
    budget (it ends as the test scoring starts): training stops like a budget stop (best
    state tested from the held-back queries, ``stopped`` recorded, checkpoint kept), never over
    budget, client count == server count."""
    budget = 4 * 180 + 539  # four planned epochs and the test (539 held back)
    outages: list[Outage] = []
    release = QueryLedger.release

    def test_begins(ledger: QueryLedger) -> None:
        outages[0].over = True
        release(ledger)

    monkeypatch.setattr(QueryLedger, "release", test_begins)
    with serving(lambda app: outages.append(Outage(app, start=30)) or outages[0]) as (
        url,
        server,
    ):
        source = f"{url}#backoff=0,retries=100"
        result = fit(config(tmp_path, url, epochs=4, query_budget=budget, source=source))
        m = result.metrics
        assert m["stopped"] == "query budget"
        assert m["best_epoch"] >= 1 and m["epochs"] < 4 and m["queries_retried"] > 0
        assert "test_accuracy" in m
        assert server.charged <= budget
        assert m["queries"] == server.charged
    assert (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_resume_may_change_the_http_client_options_but_not_the_url(tmp_path: Path) -> None:
    with serving(lambda app: Charging(app, every=10**9)) as (url, server):
        with pytest.raises(Crash):
            fit(
                config(tmp_path, url, epochs=2, source=f"{url}#backoff=0.001"),
                callbacks=[CrashMidEpoch(2)],
            )
        other = url.replace("127.0.0.1", "localhost")
        with pytest.raises(ReprogramError, match=r"different settings.*source"):
            fit(config(tmp_path, other, epochs=2, resume=True, source=other))
        result = fit(
            config(tmp_path, url, epochs=2, resume=True, source=f"{url}#timeout=20,retries=2")
        )
        assert result.metrics["epochs"] == 2 and result.metrics["queries"] == server.charged
