"""A language model served over HTTP: ``reprogram serve --source LM`` and ``http://`` clients.

Every server is a real uvicorn server on 127.0.0.1 in a background thread, serving
``tiny-random-lm`` (a tiny random BERT-like encoder: 16-d embeddings, 16 pooled features).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from helpers import Crash, CrashAt

from reprogram import FitConfig, fit
from reprogram.blackbox.language import LanguageQuerySource, language_model
from reprogram.blackbox.server import create_app, running_server, source_model
from reprogram.blackbox.wire import binary_body, request_body
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.sources import build_source
from reprogram.sources.language import LanguageSource, TokenInputs


@pytest.fixture(scope="module")
def lm() -> LanguageSource:
    source = build_source("tiny-random-lm")
    assert isinstance(source, LanguageSource)
    return source


@pytest.fixture(scope="module")
def url(lm: LanguageSource) -> Iterator[str]:
    """A server taking at most 4 rows a request."""
    with running_server(create_app(*language_model(lm), max_batch=4)) as base:
        yield base


def padded(n: int, t: int, width: int, seed: int = 0) -> TokenInputs:
    """``n`` rows of ``t`` random embeddings, row ``i`` right-padded after ``1 + i % t``."""
    g = torch.Generator().manual_seed(seed)
    embeds = torch.randn(n, t, width, generator=g)
    mask = (torch.arange(t) < (1 + torch.arange(n) % t).unsqueeze(1)).float()
    return TokenInputs(embeds, mask)


@pytest.mark.parametrize("wire", ["json", "binary"])
def test_a_served_language_model_answers_as_it_does_in_process(
    lm: LanguageSource, url: str, wire: str
) -> None:
    remote = build_source(f"{url}#wire={wire}")
    assert isinstance(remote, LanguageQuerySource)
    assert remote.outputs == "features" and remote.num_classes == lm.num_classes
    assert remote.language.embedding_fingerprint() == lm.embedding_fingerprint()
    inputs = padded(11, 7, lm.width)
    answer = remote(inputs)
    with torch.no_grad():
        expected = lm(inputs)
    torch.testing.assert_close(answer, expected, rtol=1e-5, atol=1e-6)
    assert remote.ledger.queries == 11  # one row, one query
    assert remote.endpoint.stats()["requests_sent"] == 3  # 4 + 4 + 3 rows (max_batch 4)
    remote.endpoint.close()


def test_health_says_what_a_client_needs_to_build_rows(lm: LanguageSource, url: str) -> None:
    health = httpx.get(f"{url}/health", timeout=5).json()
    assert health["kind"] == "language" and health["output"] == "features"
    assert health["language"] == "tiny-random-lm"
    assert health["input_shape"] == [lm.max_positions, lm.width]
    assert health["embedding_fingerprint"] == lm.embedding_fingerprint()


def _rows(n: int, t: int, width: int) -> np.ndarray:
    rows = np.zeros((n, t, width + 1), np.float32)
    rows[..., -1] = 1.0
    return rows


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.__setitem__((0, 0, 0), np.nan), "NaN or infinite"),
        (lambda r: r.__setitem__((1, slice(None), -1), 0.0), "no real position"),
        (lambda r: r.__setitem__((0, 1, -1), 0.5), "other than 0 and 1"),
    ],
)
def test_bad_rows_are_refused_with_the_reason(
    lm: LanguageSource, url: str, change: Any, reason: str
) -> None:
    rows = _rows(2, 3, lm.width)
    change(rows)
    for body, kind in (
        (request_body(rows), "application/json"),
        (binary_body({"rows": rows}), "application/octet-stream"),
    ):
        answer = httpx.post(
            f"{url}/predict", content=body, headers={"Content-Type": kind}, timeout=5
        )
        assert answer.status_code == 422 and reason in answer.json()["detail"]


def test_rows_of_the_wrong_shape_or_type_are_refused(lm: LanguageSource, url: str) -> None:
    cases = [
        (_rows(2, 3, lm.width + 1), "each position's"),  # one column too many
        (_rows(1, lm.max_positions + 1, lm.width), "positions"),
        (_rows(5, 3, lm.width), "1 to 4 rows"),  # over max_batch
        (np.ones((2, 3, lm.width + 1), np.uint8), "float32"),
    ]
    for rows, reason in cases:
        answer = httpx.post(f"{url}/predict", content=request_body(rows), timeout=5)
        assert answer.status_code == 422 and reason in answer.json()["detail"], reason
    remote = build_source(url)
    with pytest.raises(ReprogramError, match="positions"):
        remote(
            TokenInputs(
                torch.zeros(1, lm.max_positions + 1, lm.width), torch.ones(1, lm.max_positions + 1)
            )
        )
    assert remote.ledger.queries == 0  # refused before anything was sent
    remote.endpoint.close()


def test_the_client_checks_its_public_side_against_the_server(url: str) -> None:
    with pytest.raises(ReprogramError, match="input embeddings differ"):
        build_source(f"{url}#language=tiny-random-causal-lm")
    with pytest.raises(ReprogramError, match="not a language model"):
        build_source(f"{url}#language=tiny-random-cnn")
    with running_server(create_app(*source_model(build_source("tiny-random-cnn")))) as image:
        with pytest.raises(ReprogramError, match="no language model"):
            build_source(f"{image}#language=tiny-random-lm")


def test_a_server_that_names_no_public_side_needs_one_named(lm: LanguageSource) -> None:
    import dataclasses

    model_fn, info = language_model(lm)
    anonymous = dataclasses.replace(info, language="", embedding_fingerprint="")
    with running_server(create_app(model_fn, anonymous)) as base:
        with pytest.raises(ReprogramError, match="#language=NAME"):
            build_source(base)
        remote = build_source(f"{base}#language=tiny-random-lm")
        assert isinstance(remote, LanguageQuerySource)
        remote.endpoint.close()


def test_top_k_is_refused_for_a_language_model(lm: LanguageSource) -> None:
    with pytest.raises(ReprogramError, match="top_k"):
        create_app(*language_model(lm), top_k=2)
    assert main(["serve", "--source", "tiny-random-lm", "--top-k", "2"]) == 2


def test_serve_builds_the_language_app(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from reprogram.blackbox import server as server_module

    servers: list[Any] = []
    monkeypatch.setattr(server_module, "_run", servers.append)
    assert main(["serve", "--source", "tiny-random-lm", "--port", "8765"]) == 0
    assert "16 features for rows of up to" in capsys.readouterr().out
    with running_server(servers[0].config.app) as base:
        health = httpx.get(f"{base}/health", timeout=5).json()
        assert health["kind"] == "language" and health["public_side"] is True
        blob = httpx.get(f"{base}/language", timeout=30).content
    from reprogram.blackbox.language import public_from_blob

    public = public_from_blob(blob, tmp_path / "public")
    assert public.embedding_fingerprint() == health["embedding_fingerprint"]


def _query_run(source: str, out: Path, **kw: Any) -> FitConfig:
    return FitConfig(
        source=source,
        target="amp",
        shots=4,
        program="soft-prompt",
        program_options={"subspace": 8},
        mapping="linear",
        optimizer="rgf",
        optimizer_options={"q": 2},
        epochs=2,
        out=str(out),
        seed=1,
        progress=False,
        plots=False,
        **kw,
    )


def test_training_over_http_matches_the_same_run_in_process(
    lm: LanguageSource, url: str, tmp_path: Path
) -> None:
    def run(source: str, name: str) -> dict[str, Any]:
        return fit(_query_run(source, tmp_path / name)).metrics

    remote, local = run(url, "http"), run("query:tiny-random-lm", "query")
    for key in (
        "test_accuracy",
        "test_roc_auc",
        "test_loss",
        "queries",
        "queries_by_phase",
        "best_epoch",
    ):
        assert key in remote and remote[key] == local[key], key
    losses = [[e["val_loss"] for e in m["history"]] for m in (remote, local)]
    assert losses[0] == losses[1] and len(losses[0]) == 2
    # an artifact does not follow a URL by itself; named by the user, eval reproduces it
    assert main(["eval", str(tmp_path / "http")]) == 2
    assert main(["eval", str(tmp_path / "http"), "--source", url]) == 0
    # the same weights answered through queries in process load it too; other weights do not
    assert main(["eval", str(tmp_path / "http"), "--source", "query:tiny-random-lm"]) == 0
    assert main(["eval", str(tmp_path / "query"), "--source", url]) == 0
    assert main(["eval", str(tmp_path / "http"), "--source", "query:tiny-random-causal-lm"]) == 2
    config = json.loads((tmp_path / "http" / "config.json").read_text())
    assert config["source"]["name"] == url and config["source"]["access"] == "query"


def test_a_killed_run_over_http_resumes_without_paying_twice(url: str, tmp_path: Path) -> None:
    straight = fit(_query_run(url, tmp_path / "straight")).metrics
    with pytest.raises(Crash):
        fit(_query_run(url, tmp_path / "resumed"), callbacks=[CrashAt(2)])
    resumed = fit(_query_run(url, tmp_path / "resumed", resume=True)).metrics
    for key in ("queries", "test_roc_auc", "best_epoch"):
        assert resumed[key] == straight[key], key


def test_serving_an_artifact_of_a_sequence_target_is_refused_with_what_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = FitConfig(source="tiny-random-lm", target="amp", shots=4, program="soft-prompt",
                    mapping="linear", epochs=1, out=str(tmp_path / "run"), seed=0,
                    progress=False, plots=False)
    fit(cfg)
    assert main(["serve", str(tmp_path / "run")]) == 2  # it used to serve, then answer 500
    err = capsys.readouterr().err
    assert "sequence target 'amp'" in err and "reprogram predict" in err


def test_a_row_of_every_position_fits_the_default_body(lm: LanguageSource) -> None:
    with running_server(create_app(*language_model(lm), max_batch=1)) as base:
        remote = build_source(base)
        full = padded(2, lm.max_positions, lm.width)
        torch.testing.assert_close(remote(full), lm(full), rtol=1e-5, atol=1e-6)
        assert remote.endpoint.stats()["requests_sent"] == 2
        remote.endpoint.close()
    small = create_app(*language_model(lm), max_body_bytes=4096)
    with running_server(small) as base:
        remote = build_source(base)
        with pytest.raises(ReprogramError, match="too small for one row of 256 positions"):
            remote(padded(1, lm.max_positions, lm.width))
        remote.endpoint.close()


# ---------------------------------------------------------------- the public side, served
@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user cache of the test's own (the downloaded public sides land in it)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("REPROGRAM_CACHE", str(folder))
    return folder


def _public_app(lm: LanguageSource, language: str = "", **kw: Any) -> Any:
    """The language app handing out its public side, naming no model the client could build
    (so the client can only read what the server hands out)."""
    import dataclasses
    import functools

    from reprogram.blackbox.language import public_blob

    model_fn, info = language_model(lm)
    return create_app(model_fn, dataclasses.replace(info, language=language),
                      public=functools.partial(public_blob, lm), **kw)


def test_a_client_reads_the_public_side_from_the_server_without_the_weights(
    lm: LanguageSource, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram.blackbox.http import HttpEndpoint
    from reprogram.sources.language import PublicLanguage

    downloads: list[str] = []
    fetch = HttpEndpoint.public_side
    monkeypatch.setattr(HttpEndpoint, "public_side",
                        lambda self: downloads.append(self.url) or fetch(self))
    with running_server(_public_app(lm)) as base:
        assert httpx.get(f"{base}/health", timeout=5).json()["public_side"] is True
        remote = build_source(base)
        assert isinstance(remote, LanguageQuerySource)
        public = remote.language
        assert isinstance(public, PublicLanguage) and public.num_parameters == 0
        assert public.embedding_fingerprint() == lm.embedding_fingerprint()
        # the tokenizer read back from the server's files spells as the model's own does
        for symbol in ("A", "K", "[", "c1ccccc1"):
            assert public.symbol_ids(symbol) == lm.symbol_ids(symbol)
        assert public.special_ids() == lm.special_ids()
        assert public.ordinary_tokens() == lm.ordinary_tokens()
        inputs = padded(5, 6, lm.width)
        with torch.no_grad():
            expected = lm(inputs)
        torch.testing.assert_close(remote(inputs), expected, rtol=1e-5, atol=1e-6)
        remote.endpoint.close()
        files = [f for f in cache.glob("language-public/*/*") if f.name != "public.safetensors"]
        assert files  # the tokenizer's files
        written = {f: f.stat().st_mtime_ns for f in files}
        # a second client reads the cached copy: no second download, no file rewritten
        again = build_source(base)
        again.endpoint.close()  # type: ignore[attr-defined]
    assert len(downloads) == 1
    assert {f: f.stat().st_mtime_ns for f in files} == written
    assert len(list(cache.glob("language-public/*/public.safetensors"))) == 1


def test_training_through_a_served_public_side_matches_the_run_in_process(
    lm: LanguageSource, cache: Path, tmp_path: Path
) -> None:
    with running_server(_public_app(lm, max_batch=4)) as base:
        remote = fit(_query_run(base, tmp_path / "http")).metrics
        assert main(["eval", str(tmp_path / "http"), "--source", base]) == 0
    local = fit(_query_run("query:tiny-random-lm", tmp_path / "query")).metrics
    for key in ("test_accuracy", "test_roc_auc", "test_loss", "queries", "best_epoch"):
        assert remote[key] == local[key], key


def test_a_public_side_that_differs_from_the_servers_fingerprint_is_refused(
    lm: LanguageSource, cache: Path
) -> None:
    import dataclasses
    import functools

    from reprogram.blackbox.language import public_blob

    other = build_source("tiny-random-causal-lm")
    assert isinstance(other, LanguageSource)
    model_fn, info = language_model(lm)
    app = create_app(model_fn, dataclasses.replace(info, language=""),
                     public=functools.partial(public_blob, other))
    with running_server(app) as base:
        with pytest.raises(ReprogramError, match="fingerprints differ"):
            build_source(base)
        # naming the model builds it here, as before
        named = build_source(f"{base}#language=tiny-random-lm")
        assert isinstance(named.language, LanguageSource)  # type: ignore[attr-defined]
        named.endpoint.close()  # type: ignore[attr-defined]
    assert not list(cache.glob("language-public/*/public.safetensors"))


def test_a_malformed_public_side_is_named(lm: LanguageSource, tmp_path: Path) -> None:
    import base64

    from safetensors.torch import save

    from reprogram.blackbox.language import PUBLIC_FORMAT, public_blob, public_from_blob

    with pytest.raises(ReprogramError, match="malformed"):
        public_from_blob(b"not a safetensors blob", tmp_path / "a")
    table = {"embeddings": torch.zeros(4, 2)}
    meta = {"format": PUBLIC_FORMAT, "name": "x", "max_positions": "8", "output": "hidden",
            "num_classes": "2"}
    escape = {"../outside.json": base64.b64encode(b"{}").decode()}
    with pytest.raises(ReprogramError, match="no plain file name"):
        public_from_blob(save(table, metadata={**meta, "tokenizer": json.dumps(escape)}),
                         tmp_path / "b")
    assert not (tmp_path / "outside.json").exists()
    with pytest.raises(ReprogramError, match="format"):
        public_from_blob(save(table, metadata={**meta, "format": "other/9", "tokenizer": "{}"}),
                         tmp_path / "c")
    # what the server packs reads back whole
    public = public_from_blob(public_blob(lm), tmp_path / "d")
    assert public.embedding_fingerprint() == lm.embedding_fingerprint()
    assert (public.max_positions, public.num_classes) == (lm.max_positions, lm.num_classes)


def test_the_public_side_needs_the_token_as_queries_do(
    lm: LanguageSource, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(_public_app(lm, token="s3cret")) as base:
        assert httpx.get(f"{base}/language", timeout=5).status_code == 401
        monkeypatch.setenv("REPROGRAM_API_TOKEN", "wrong")
        with pytest.raises(ReprogramError, match="401"):
            build_source(base)
        monkeypatch.setenv("REPROGRAM_API_TOKEN", "s3cret")
        remote = build_source(base)
        assert remote.language.embedding_fingerprint() == lm.embedding_fingerprint()  # type: ignore[attr-defined]
        remote.endpoint.close()  # type: ignore[attr-defined]
