"""Inference reads token ids longest first and gives results back in the rows' order."""

from __future__ import annotations

import torch
from torch import nn

from reprogram.adapter import Adapted
from reprogram.batching import length_order, restore
from reprogram.evaluate import score


def _ids(lengths: list[int]) -> torch.Tensor:
    """Token ids ``[N, max(lengths)]``: row ``i`` holds ``lengths[i]`` symbols (id ``i + 1``)
    then padding."""
    x = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = i + 1
    return x


def test_length_order_is_longest_first_and_stable() -> None:
    x = _ids([2, 5, 1, 5, 3])
    order = length_order(x)
    assert order is not None and order.tolist() == [1, 3, 4, 0, 2]
    assert torch.equal(restore(x[order], order), x)
    assert length_order(_ids([4, 3, 3, 1])) is None  # already in that order
    assert length_order(torch.randn(5, 7)) is None  # a float input (series, pixels)
    assert length_order(torch.randn(5, 1, 7)) is None
    assert length_order(_ids([3])) is None


class _Counter(Adapted):
    """Scores ``[B, 2]``: the row's symbol count and its first id; records the width of each
    batch it is given after cutting it to its longest row, as a token program does."""

    def __init__(self) -> None:
        super().__init__()
        self.widths: list[int] = []
        self.spec = {"target": {"task": "classification", "class_names": ["a", "b"]}}

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = (ids != 0).sum(1)
        self.widths.append(int(n.max()) * len(ids))
        return torch.stack([n.float(), ids[:, 0].float()], 1)


def test_score_and_predict_keep_the_rows_order_and_pad_less() -> None:
    lengths = [1, 9, 2, 8, 1, 7, 2, 9]
    x, y = _ids(lengths), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    model = _Counter()
    kept: list[torch.Tensor] = []
    totals = score(model, x, y, batch_size=2, keep=kept)
    rows = torch.cat(kept)
    assert rows[:, 0].tolist() == [float(n) for n in lengths]  # the given order
    assert rows[:, 1].tolist() == [float(i + 1) for i in range(len(lengths))]
    assert int(totals[1]) == int((rows.argmax(-1) == y).sum()) and int(totals[2]) == 8
    # read in the given order, each batch of 2 would be as wide as 2 x 9, 2 x 8, ...
    assert sum(model.widths) == 2 * (9 + 8 + 2 + 1) < 2 * (9 + 8 + 7 + 9)
    model.widths.clear()
    probs = model.predict_proba(x, batch_size=3)
    assert torch.equal(model.predict(x, batch_size=3), rows.argmax(-1))
    assert torch.allclose(probs, rows.softmax(-1))
    assert len(model.widths) == 6  # three batches a call


class _Sum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.sum(-1), -x.sum(-1)], 1)


def test_float_inputs_are_read_as_given() -> None:
    x, y = torch.randn(7, 5), torch.randint(0, 2, (7,))
    kept: list[torch.Tensor] = []
    score(_Sum(), x, y, batch_size=3, keep=kept)
    assert torch.allclose(torch.cat(kept)[:, 0], x.sum(-1))
