"""The order in which inference passes read a split: token-id rows grouped by length.

A token program cuts each batch to its longest row, so a batch holding one long sequence
pays for it in every row: on ``b3db`` (SMILES, mean 58 symbols, longest 383) random batches
of 32 spend about two thirds of their positions on padding. Scoring, prediction and the
frozen-output passes read rows longest first instead and put their outputs back in the
given order, which changes no result beyond floating-point rounding. Training batches stay
random: grouping them by length would change what is learned (``amp``'s classes differ in
length).
"""

from __future__ import annotations

import torch


def length_order(x: torch.Tensor) -> torch.Tensor | None:
    """The row order, longest first, for token ids ``x`` ``[N, L]`` (an integer tensor, ``0``
    padding at the end); ``None`` for any other input (images, series: every row the same
    size) or when the rows are already in that order.

    Ties keep their given order, so the order (and the results) are reproducible.
    """
    if x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool or len(x) < 2:
        return None
    lengths = (x != 0).sum(1)
    order = torch.sort(lengths, descending=True, stable=True).indices
    if bool((order == torch.arange(len(x), device=order.device)).all()):
        return None
    return order


def restore(outputs: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    """``outputs`` ``[N, ...]`` computed on rows read in ``order`` (from :func:`length_order`),
    back in the rows' given order."""
    if order is None:
        return outputs
    back = torch.empty_like(order)
    back[order] = torch.arange(len(order), device=order.device)
    return outputs[back.to(outputs.device)]
