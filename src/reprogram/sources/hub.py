"""Reaching the Hugging Face hub: a quick "certainly offline" check and one-line errors.

Shared by the sources that download from the hub (``timm:NAME``, ``hf:NAME``).
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub is certainly unreachable (its host does not resolve), else None.

    A cheap DNS lookup; anything short of a resolution failure (or an offline hub setting,
    which huggingface_hub handles quickly itself) returns None and lets the download try.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    if getattr(constants, "HF_HUB_OFFLINE", False):
        return None
    host = urlparse(str(constants.ENDPOINT)).hostname
    if not host:
        return None
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror as exc:
        return f"cannot resolve {host} ({exc})"
    except OSError:
        return None
    return None


def one_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` of ``exc``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")
