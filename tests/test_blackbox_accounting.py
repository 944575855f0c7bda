"""Fault injection for black-box query accounting: the client's count equals what the server
charged, through retries, a budget, a kill mid-epoch with --resume, and SIGTERM.

The server is ``reprogram serve``'s app behind a :class:`Charging` middleware that charges for
every ``/predict`` request it RECEIVES (one query per input, counted on the server side before
anything else), then misbehaves on some requests: 503 after charging, answers with short rows,
NaN probabilities or malformed JSON. The client must count what it sent, not what was answered.
"""

from __future__ import annotations

import base64
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
