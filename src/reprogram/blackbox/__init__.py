"""Black-box sources: models reprogram can only query (no weights, no gradients)."""

from __future__ import annotations

from .protocol import EndpointError, EndpointInfo, QueryEndpoint, dense_from_topk

__all__ = ["EndpointError", "EndpointInfo", "QueryEndpoint", "dense_from_topk"]
