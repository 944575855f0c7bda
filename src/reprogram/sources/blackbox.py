"""Black-box sources by name: ``onnx:PATH``, ``http://…``, ``https://…`` and ``query:NAME``.

Each builds a :class:`~reprogram.blackbox.source.BlackBoxSource` (queries counted, budget
enforced, answers cached) around an endpoint. An HTTP source takes client options after a
``#`` (a URL fragment: never sent to the server), ``K=V`` pairs joined by commas:
``http://127.0.0.1:8000#timeout=60,deadline=120,retries=8`` (see :class:`HttpOptions`). A
served language model (``reprogram serve --source minilm-l6``) becomes a query-only language
source whose tokenizer and input embeddings (its public side) come from the server itself
(``GET /language``, downloaded once into the user cache and checked against the server's
fingerprint), so the client needs no weights; ``#language=NAME`` builds them here instead, from
the registered model of that name (also for a server too old to hand them out). The
endpoint modules are imported only when such a name is used, so a missing optional dependency
gives a clear error instead of breaking ``reprogram list sources``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from ..blackbox.language import fetch_public, query_any, remote_language
from ..blackbox.source import BlackBoxSource
from ..blackbox.wire import LANGUAGE
from ..errors import ReprogramError
from . import SOURCES, build_source


def _endpoint_class(module: str, cls: str, what: str) -> Any:
    """``module.cls``, or a ReprogramError that says what is missing."""
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ReprogramError(
            f"{what} sources need {module}.{cls}, which cannot be imported here "
            f"({type(exc).__name__}: {exc}). Install the black-box extra "
            f"(pip install 'reprogram[blackbox]') or use a version of reprogram that has it."
        ) from None


@SOURCES.register(
    "onnx:", prefix=True, help="PATH an ONNX classifier run by ONNX Runtime, queried as a black box"
)
def build_onnx(path: str) -> Any:

    endpoint = _endpoint_class("reprogram.blackbox.onnx", "OnnxEndpoint", "onnx:")(path)
    return BlackBoxSource(endpoint, name=f"onnx:{path}")


@dataclass
class HttpOptions:
    """Client options of an ``http(s)://`` source, given after ``#`` in its name."""

    timeout: float = field(
        default=30.0, metadata={"help": "seconds for each connect, read and write"}
    )
    deadline: float = field(
        default=60.0,
        metadata={"help": "seconds one request may take in all, reading the answer included"},
    )
    retries: int = field(
        default=5, metadata={"help": "further attempts after a request fails in a retryable way"}
    )
    concurrency: int = field(default=4, metadata={"help": "requests in flight at once"})
    wire: str = field(
        default="auto",
        metadata={
            "help": "body encoding: auto (safetensors bytes when the server offers them, else "
            "JSON), binary or json"
        },
    )
    backoff: float = field(
        default=0.5, metadata={"help": "first retry delay in seconds (doubles per attempt)"}
    )
    max_batch: int | None = field(
        default=None, metadata={"help": "most inputs per request (default: what the server takes)"}
    )
    language: str = field(
        default="",
        metadata={
            "help": "a served language model: build its tokenizer and input embeddings here "
            "from this registered model (default: download them from the server, or build "
            "the one it names when it does not hand them out)"
        },
    )


def parse_http_name(name: str) -> tuple[str, dict[str, str]]:
    """``(url, options)`` of ``URL#K=V,K=V``; ReprogramError for a pair without ``=``."""
    url, _, fragment = name.partition("#")
    options: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in fragment.split(","))):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ReprogramError(
                f"the source {name!r} has a malformed option {pair!r}: options follow '#' as "
                f"K=V pairs joined by commas, e.g. {url}#timeout=60,retries=8."
            )
        options[key.strip()] = value.strip()
    return url, options


def _build_http(name: str) -> Any:
    url, given = parse_http_name(name)
    options: HttpOptions = SOURCES.build_config(url, given)
    endpoint_class = _endpoint_class("reprogram.blackbox.http", "HttpEndpoint", "http(s)://")
    client = dataclasses.asdict(options)
    language = client.pop("language")
    endpoint = endpoint_class(url, **client)
    if endpoint.info.kind != LANGUAGE:
        if language:
            endpoint.close()
            raise ReprogramError(
                f"{url} serves {endpoint.info.name!r}, which is no language model: drop "
                f"#language={language}."
            )
        return BlackBoxSource(endpoint, name=name)
    wanted = language or endpoint.info.language
    try:
        if not language and endpoint.info.public_side:  # no weights needed here
            return remote_language(endpoint, name, fetch_public(endpoint))
        if not wanted:
            raise ReprogramError(
                f"the language model at {url} does not say which model's tokenizer and input "
                f"embeddings to read; name it as a source option: {url}#language=NAME "
                "(reprogram list sources)."
            )
        return remote_language(endpoint, name, build_source(wanted))
    except BaseException:
        endpoint.close()
        raise


@SOURCES.register(
    "http://",
    prefix=True,
    config=HttpOptions,
    help="HOST:PORT a model served by `reprogram serve` (or the same API), queried over HTTP; "
    "client options after '#': http://HOST:PORT#timeout=60,deadline=120,retries=8",
)
def build_http(rest: str) -> Any:
    return _build_http("http://" + rest)


@SOURCES.register(
    "https://",
    prefix=True,
    config=HttpOptions,
    help="HOST/PATH the same API over TLS, queried as a black box (the same '#' options)",
)
def build_https(rest: str) -> Any:
    return _build_http("https://" + rest)


@SOURCES.register(
    "query:",
    prefix=True,
    help="NAME any source above answered as a black box in-process: probabilities only (a "
    "language model: its states or logits), every query counted (what --optimizer "
    "rgf|spsa-gc does to a white-box source)",
)
def build_query(name: str) -> Any:
    return query_any(build_source(name))


__all__ = [
    "HttpOptions",
    "build_http",
    "build_https",
    "build_onnx",
    "build_query",
    "parse_http_name",
]
