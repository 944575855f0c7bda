"""The order in which inference passes read a split: token-id rows grouped by length.

A token program cuts each batch to its longest row, so a batch holding one long sequence
pays for it in every row: on ``b3db`` (SMILES, mean 58 symbols, longest 383) random batches
of 32 spend about two thirds of their positions on padding. Scoring, prediction and the
frozen-output passes read rows longest first instead and put their outputs back in the
given order, which changes no result beyond floating-point rounding.

Training batches stay random (grouping the data by length would change what is learned:
``amp``'s classes differ in length), but a model whose rows do not interact may read a
random batch in a few sub-batches of similar length (:func:`length_groups`): the batch's
mean loss is their size-weighted sum, so the gradient is the batch's, at a fraction of the
padding.

``REPROGRAM_LENGTH_BATCHING=0`` reads every batch as given (what runs before this module
did, bit for bit); ``1`` (the default) groups by length.
"""

from __future__ import annotations

import torch

from .runtime import switch

#: The environment variable that turns length grouping off (``0``) or on (``1``).
ENV = "REPROGRAM_LENGTH_BATCHING"


def enabled() -> bool:
    """Whether :data:`ENV` leaves length grouping on (unset or ``1``).

    Raises:
        ReprogramError: the variable holds anything but ``0`` or ``1``.
    """
    return switch(ENV, "group token rows by length", "read batches as given")


def _token_ids(x: torch.Tensor) -> bool:
    """Whether ``x`` looks like token ids ``[N, L]``: two dimensions, integer values."""
    return x.dim() == 2 and not x.dtype.is_floating_point and x.dtype != torch.bool


def length_order(x: torch.Tensor, honour_env: bool = True) -> torch.Tensor | None:
    """The row order, longest first, for token ids ``x`` ``[N, L]`` (an integer tensor, ``0``
    padding at the end); ``None`` for any other input (images, series: every row the same
    size), when the rows are already in that order, or when :data:`ENV` is ``0`` (unless
    ``honour_env`` is False: ``reprogram eval`` reads a run as it was recorded).

    Ties keep their given order, so the order (and the results) are reproducible.
    """
    if not _token_ids(x) or len(x) < 2 or (honour_env and not enabled()):
        return None
    lengths = (x != 0).sum(1)
    order = torch.sort(lengths, descending=True, stable=True).indices
    if bool((order == torch.arange(len(x), device=order.device)).all()):
        return None
    return order


#: What one more forward pass costs, in padded positions: a sub-batch is worth starting when
#: it saves more padding than this (about 50 ms a pass against 1.3 ms a position for
#: MiniLM's forward and backward on one CPU core).
PASS_COST = 48


def length_groups(x: torch.Tensor, pass_cost: int = PASS_COST) -> list[torch.Tensor] | None:
    """Rows of token ids ``x`` ``[B, L]`` split into sub-batches of similar length: index
    tensors, longest rows first, chosen to minimise the padded positions read plus
    ``pass_cost`` per sub-batch (each cut to its longest row); ``None`` where one batch is
    best, for any input other than token ids, for rows on an accelerator (where a small
    pass costs about what a large one does), or when :data:`ENV` is ``0``.

    The split is exact for a model whose rows do not interact: the batch's mean loss is
    ``sum(len(g) / B * mean_loss(x[g]))`` over the groups.
    """
    if not _token_ids(x) or x.device.type != "cpu" or not enabled():
        return None
    counts = (x != 0).sum(1)
    order = torch.sort(counts, descending=True, stable=True).indices  # as length_order
    n = len(order)
    lengths = counts[order].tolist()  # longest first
    # A group costs its first (longest) row's length times its size, plus one pass. A cut
    # inside a run of equal lengths never helps (moving it to the run's start costs no more),
    # so only the run starts are tried: O(distinct lengths²), whatever the batch size.
    cuts = [j for j in range(n) if j == 0 or lengths[j] != lengths[j - 1]] + [n]
    best, back = [0.0] + [float("inf")] * (len(cuts) - 1), [0] * len(cuts)
    for b in range(1, len(cuts)):
        for a in range(b):
            cost = best[a] + max(lengths[cuts[a]], 1) * (cuts[b] - cuts[a]) + pass_cost
            if cost < best[b]:
                best[b], back[b] = cost, a
    bounds, b = [], len(cuts) - 1
    while b > 0:
        bounds.append((cuts[back[b]], cuts[b]))
        b = back[b]
    if len(bounds) < 2:
        return None
    return [order[lo:hi] for lo, hi in reversed(bounds)]


def restore(outputs: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    """``outputs`` ``[N, ...]`` computed on rows read in ``order`` (from :func:`length_order`),
    back in the rows' given order."""
    if order is None:
        return outputs
    back = torch.empty_like(order)
    back[order] = torch.arange(len(order), device=order.device)
    return outputs[back.to(outputs.device)]
