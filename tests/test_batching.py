"""Inference reads token ids longest first and gives results back in the rows' order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reprogram.adapter import Adapted
from reprogram.batching import length_groups, length_order, restore
from reprogram.errors import ReprogramError
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


def test_length_groups_cover_the_batch_once_longest_first() -> None:
    x = _ids([3, 40, 2, 38, 4, 39, 3, 2])
    groups = length_groups(x, pass_cost=8)
    assert groups is not None and len(groups) == 2
    assert sorted(torch.cat(groups).tolist()) == list(range(8))
    assert groups[0].tolist() == [1, 5, 3]  # the long rows first, longest first
    assert length_groups(_ids([5, 5, 5, 5])) is None  # one length: nothing to save
    assert length_groups(x, pass_cost=10_000) is None  # a pass dearer than the padding
    assert length_groups(torch.randn(8, 40)) is None


@pytest.mark.parametrize(
    ("program", "source"),
    [("dictionary", "tiny-random-lm"), ("soft-prompt", "tiny-random-lm"),
     ("text", "tiny-random-lm"), ("soft-prompt", "tiny-random-causal-lm#output=hidden"),
     ("dictionary", "tiny-random-causal-lm")],
)
def test_sub_batches_give_the_batch_gradient(program: str, source: str) -> None:
    """The trainer's split loss (sizes as weights) has the whole batch's gradient: the
    rows of a token program on a language model do not interact."""
    from reprogram.model import ReprogrammedModel

    torch.manual_seed(0)
    model = ReprogrammedModel.build(
        source, input_shape=(60,), class_names=["neg", "pos"], program=program,
        mapping="linear", vocabulary=list("ACDEFGHIKLMNPQRSTVWY"),
    ).train()
    x = _ids([60, 2, 3, 55, 1, 2, 58, 3])  # symbols 1..8 of 20
    y = torch.tensor([1, 0, 0, 1, 0, 0, 1, 1])
    groups = model.row_groups(x)
    assert groups is not None and len(groups) >= 2

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        params = [p for p in model.parameters() if p.requires_grad]
        return list(torch.autograd.grad(loss, params))

    whole = nn.functional.cross_entropy(model(x), y)
    split = sum(nn.functional.cross_entropy(model(x[g]), y[g]) * len(g) / len(y) for g in groups)
    assert torch.allclose(whole, split, atol=1e-6)
    for a, b in zip(grads(whole), grads(split), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_a_query_only_source_reads_a_batch_whole() -> None:
    """Each pass through a black box is a round of requests: no sub-batches there."""
    from reprogram.model import ReprogrammedModel

    model = ReprogrammedModel.build(
        "query:tiny-random-lm", input_shape=(60,), class_names=["neg", "pos"],
        program="soft-prompt", mapping="linear", vocabulary=list("ACDEFGHIKLMNPQRSTVWY"),
    )
    x = _ids([60, 2, 3, 55, 1, 2, 58, 3])
    assert model.row_groups(x) is None and length_groups(x) is not None


def test_training_reads_a_batch_in_its_sub_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fit reads batches of mixed lengths in the model's sub-batches (more passes than
    batches), every training row once an epoch."""
    from reprogram import FitConfig, fit
    from reprogram.model import ReprogrammedModel

    rows = "".join(f"{'KRDE' * (12 if i % 4 == 0 else 1)}A,{i % 2}\n" for i in range(40))
    path = tmp_path / "mixed.csv"
    path.write_text("sequence,label\n" + rows)
    seen: list[int] = []
    forward = ReprogrammedModel.forward

    def spy(self: ReprogrammedModel, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            seen.append(len(x))
        return forward(self, x)

    monkeypatch.setattr(ReprogrammedModel, "forward", spy)
    config = FitConfig(source="tiny-random-lm", target=f"csv:{path}", program="soft-prompt",
                       program_options={"length": 2}, epochs=1, batch_size=16, seed=0,
                       out=str(tmp_path / "run"), progress=False, plots=False)
    result = fit(config)
    train = result.metrics["splits"]["train"]
    assert sum(seen) == train and len(seen) > -(-train // 16)  # more passes than batches


def test_the_environment_turns_length_batching_off(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _ids([60, 2, 3, 55, 1, 2, 58, 3])
    monkeypatch.setenv("REPROGRAM_LENGTH_BATCHING", "0")
    assert length_order(x) is None and length_groups(x) is None
    monkeypatch.setenv("REPROGRAM_LENGTH_BATCHING", "1")
    assert length_order(x) is not None and length_groups(x) is not None
    monkeypatch.setenv("REPROGRAM_LENGTH_BATCHING", "off")
    with pytest.raises(ReprogramError, match=r"give 1 to group token rows by length .* or 0"):
        length_order(x)


def _reference_cost(lengths: list[int], pass_cost: int) -> float:
    """The cheapest split of rows sorted longest first, trying every cut (O(n²))."""
    best = [0.0] + [float("inf")] * len(lengths)
    for k in range(1, len(lengths) + 1):
        for j in range(k):
            best[k] = min(best[k], best[j] + max(lengths[j], 1) * (k - j) + pass_cost)
    return best[-1]


def test_length_groups_find_the_cheapest_split() -> None:
    """Trying only the starts of runs of equal lengths loses nothing against every cut."""
    g = torch.Generator().manual_seed(0)
    for trial in range(30):
        n = int(torch.randint(2, 40, (1,), generator=g))
        lengths = torch.randint(1, 6 if trial % 2 else 200, (n,), generator=g).tolist()
        x = _ids(lengths)
        groups = length_groups(x) or [torch.arange(n)]
        cost = sum(max(lengths[int(i)] for i in grp) * len(grp) + 48 for grp in groups)
        assert cost == _reference_cost(sorted(lengths, reverse=True), 48)


def _trainer(model: nn.Module, task: str) -> object:
    """A Trainer with only what ``_loss`` and ``source_outputs`` read."""
    from types import SimpleNamespace

    from reprogram.tasks import task_of
    from reprogram.train import Trainer

    trainer = Trainer.__new__(Trainer)
    trainer.model = model
    trainer.task = task_of(task)
    trainer.fabric = SimpleNamespace(world_size=1)
    trainer.config = SimpleNamespace(eval_batch_size=3)
    return trainer


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_trainer_loss_in_sub_batches_is_the_batch_loss(task: str) -> None:
    from reprogram.model import ReprogrammedModel

    torch.manual_seed(0)
    model = ReprogrammedModel.build(
        "tiny-random-lm", input_shape=(60,), class_names=["neg", "pos"] if task ==
        "classification" else ["value"], program="dictionary", mapping="linear",
        vocabulary=list("ACDEFGHIKLMNPQRSTVWY"),
    ).train()
    x = _ids([60, 2, 3, 55, 1, 2, 58, 3])
    y = torch.tensor([1, 0, 0, 1, 0, 0, 1, 1]) if task == "classification" else torch.randn(8)
    trainer = _trainer(model, task)
    split = trainer._loss(model, x, y)
    trainer.fabric.world_size = 2  # several devices: the batch is read whole
    whole = trainer._loss(model, x, y)
    assert model.row_groups(x) is not None
    assert torch.allclose(split, whole, atol=1e-6)
    params = [p for p in model.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(split, params), torch.autograd.grad(whole, params),
                    strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_source_outputs_come_back_in_the_rows_order() -> None:
    from reprogram.data.base import Split
    from reprogram.model import ReprogrammedModel

    model = ReprogrammedModel.build(
        "tiny-random-lm", input_shape=(60,), class_names=["neg", "pos"], program="text",
        mapping="linear", vocabulary=list("ACDEFGHIKLMNPQRSTVWY"),
    )
    x = _ids([2, 60, 3, 55, 1, 2, 58])
    out = _trainer(model, "classification").source_outputs(Split(x, torch.zeros(7).long()))
    with torch.no_grad():
        one_by_one = torch.cat([model.source_logits(x[i : i + 1]) for i in range(7)])
    assert torch.allclose(out, one_by_one, atol=1e-5)


def test_the_fine_tuned_language_model_splits_with_the_batch_gradient() -> None:
    from reprogram.baselines.models import FinetunedLanguageModel
    from reprogram.sources import build_source

    torch.manual_seed(0)
    model = FinetunedLanguageModel(
        build_source("tiny-random-lm"), list("ACDEFGHIKLMNPQRSTVWY"), (60,), 2
    ).train()
    x, y = _ids([60, 2, 3, 55, 1, 2, 58, 3]), torch.tensor([1, 0, 0, 1, 0, 0, 1, 1])
    groups = model.row_groups(x)
    assert groups is not None and len(groups) >= 2
    whole = nn.functional.cross_entropy(model(x), y)
    split = sum(nn.functional.cross_entropy(model(x[g]), y[g]) * len(g) / len(y) for g in groups)
    params = [p for p in model.parameters() if p.requires_grad]
    assert torch.allclose(whole, split, atol=1e-6)
    for a, b in zip(torch.autograd.grad(whole, params), torch.autograd.grad(split, params),
                    strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-3)


def test_eval_reads_a_run_as_it_was_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run scored with its rows as given (REPROGRAM_LENGTH_BATCHING=0, or made before the
    grouping) is evaluated as given, whatever the switch says now: exactly reproduced."""
    import json

    from reprogram.cli import main

    rows = "".join(f"{'KRDE' * (12 if i % 3 == 0 else 1)}{'A' * (i % 5)},{i * 0.1:.1f}\n"
                   for i in range(40))
    path = tmp_path / "values.csv"
    path.write_text("sequence,label\n" + rows)
    monkeypatch.setenv("REPROGRAM_LENGTH_BATCHING", "0")
    assert main(["fit", "--source", "tiny-random-lm", "--target", f"csv:{path}#task=regression",
                 "--program", "soft-prompt", "--program-opt", "length=2", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet", "--no-plots"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["length_batching"] is False
    monkeypatch.setenv("REPROGRAM_LENGTH_BATCHING", "1")
    import reprogram.evaluate

    asked: list[object] = []
    real = reprogram.evaluate.score

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        asked.append(kwargs.get("by_length"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reprogram.evaluate, "score", spy)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reproduced"] is True
    assert asked == [False]  # read as recorded, not as the switch now says
