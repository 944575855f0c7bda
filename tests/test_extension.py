"""A new component of each kind is one module and one registration, with no edit elsewhere.

Everything below lives in this test module alone: a source, a target, a program, a mapping
(with a callback it declares itself), an optimizer and a baseline, each registered with its
kind's ``@REGISTRY.register``. They then train, save and reload through the library's own
``fit``, ``run_baseline`` and ``load_artifact``; nothing in ``src/`` names them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprogram import FitConfig, ReprogrammedModel, fit, load_artifact
from reprogram.adapter import Adapted
from reprogram.baselines import BASELINES, BaselineConfig, run_baseline
from reprogram.baselines.base import BuildContext, GradientBaseline
from reprogram.callbacks import Callback, Trainer
from reprogram.data import TARGETS
from reprogram.data.base import Split, TargetData
from reprogram.mappings import MAPPINGS
from reprogram.mappings.base import Mapping
from reprogram.optim import OPTIMIZERS
from reprogram.programs import PROGRAMS
from reprogram.sources import SOURCES, Source
from reprogram.sources.module import from_module, tiny_cnn

# ---------------------------------------------------------------- a source


@SOURCES.register("ext-cnn", help="a tiny random CNN with 12 outputs (extension test)")
def build_ext_cnn() -> Source:
    return from_module(
        tiny_cnn(12, seed=1),
        input_size=(3, 16, 16),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        name="ext-cnn",
    )


# ---------------------------------------------------------------- a target


@TARGETS.register("ext-blobs", help="two classes of 6x6 grey blobs (extension test)")
def build_ext_blobs() -> TargetData:
    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        y = torch.arange(n) % 2
        x = torch.rand(n, 1, 6, 6, generator=gen) * 0.2
        x[y == 1, :, 1:4, 1:4] += 0.8  # class 1 has a bright square
        return Split(x.clamp(0, 1), y)

    return TargetData("ext-blobs", split(40), split(20), ["dark", "square"])


# ---------------------------------------------------------------- a program


@dataclass
class GainConfig:
    """Options of the ``ext-gain`` program."""

    gain: float = field(default=1.0, metadata={"help": "initial gain"})

    def __post_init__(self) -> None:
        if self.gain <= 0:
            raise ValueError(f"gain must be positive, got {self.gain}")


class GainProgram(nn.Module):
    """``[B, 1, h, w]`` → ``[B, 3, S, S]``: upsampled, times a learned gain, plus a bias map."""

    def __init__(self, config: GainConfig, source_size: tuple[int, ...]) -> None:
        super().__init__()
        self.size = int(source_size[-1])
        self.gain = nn.Parameter(torch.tensor(float(config.gain)))
        self.bias = nn.Parameter(torch.zeros(3, self.size, self.size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (self.gain * up.expand(-1, 3, -1, -1) + self.bias).clamp(0, 1)


@PROGRAMS.register("ext-gain", config=GainConfig, help="a gain and a bias map (extension test)")
def build_gain(
    config: GainConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> GainProgram:
    return GainProgram(config, source_size)


# ---------------------------------------------------------------- a mapping + its callback


class EpochCounter(Callback):
    """Counts the epochs it saw (state checkpointed); declared by the mapping below."""

    name = "ext_epochs"

    def __init__(self) -> None:
        self.seen = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        self.seen += 1

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = int(state.get("seen", 0))


@dataclass
class FirstConfig:
    """Options of the ``ext-first`` mapping."""

    scale: float = field(default=1.0, metadata={"help": "initial scale"})


class FirstMapping(Mapping):
    """Class ``t`` reads source logit ``t``, times a learned scale."""

    def __init__(self, num_source: int, num_target: int, config: FirstConfig) -> None:
        super().__init__(num_source, num_target)
        self.scale = nn.Parameter(torch.tensor(float(config.scale)))

    def callbacks(self) -> list[Callback]:
        return [EpochCounter()]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.scale * logits[:, : self.num_target]

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        return [{"source_labels": [label_names[t]]} for t in range(self.num_target)]


@MAPPINGS.register("ext-first", config=FirstConfig, help="the first K_t logits (extension test)")
def build_first(config: FirstConfig, num_source: int, num_target: int) -> FirstMapping:
    return FirstMapping(num_source, num_target, config)


# ---------------------------------------------------------------- an optimizer


@dataclass
class PlainConfig:
    """Options of the ``ext-sgd`` optimizer."""

    lr: float = field(default=0.1, metadata={"help": "step size"})


class PlainSGD:
    """``p -= lr * grad``, nothing else; its state is the step count."""

    def __init__(
        self, config: PlainConfig, params: list[nn.Parameter], backward: Callable[..., None]
    ) -> None:
        self.lr, self.params, self.backward, self.steps = config.lr, params, backward, 0

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        loss = loss_fn()
        self.backward(loss)
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p -= self.lr * p.grad
                    p.grad = None
        self.steps += 1
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])


@OPTIMIZERS.register("ext-sgd", config=PlainConfig, help="plain SGD (extension test)")
def build_plain(
    config: PlainConfig, params: list[nn.Parameter], backward: Callable[..., None]
) -> PlainSGD:
    return PlainSGD(config, params, backward)


# ---------------------------------------------------------------- a baseline


class PixelMean(Adapted):
    """A linear layer on the mean pixel: ``[B, 1, h, w]`` → ``[B, K]``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2, 3)).unsqueeze(1))

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(self.state_dict())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class PixelMeanBaseline(GradientBaseline):
    needs_source = False

    def build(self, ctx: BuildContext) -> nn.Module:
        return PixelMean(ctx.num_classes)


@BASELINES.register("ext-mean", help="logistic regression on the mean pixel (extension test)")
def build_mean(options: None) -> PixelMeanBaseline:
    return PixelMeanBaseline(options)


# ---------------------------------------------------------------- the checks


def _config(tmp_path: Path, **kw: Any) -> FitConfig:
    base: dict[str, Any] = dict(
        source="ext-cnn",
        target="ext-blobs",
        program="ext-gain",
        mapping="ext-first",
        optimizer="ext-sgd",
        epochs=3,
        batch_size=8,
        seed=0,
        out=str(tmp_path / "fit"),
        progress=False,
        plots=False,
    )
    base.update(kw)
    return FitConfig(**base)


def test_every_new_kind_trains_saves_and_reloads(tmp_path: Path) -> None:
    result = fit(_config(tmp_path, program_options={"gain": 0.5}))
    model = result.model
    assert isinstance(model.program, GainProgram) and isinstance(model.mapping, FirstMapping)
    assert float(model.program.gain.detach()) != 0.5  # the new optimizer moved the new program
    assert result.metrics["callbacks"]["ext_epochs"]["seen"] == 3  # the mapping's own hook
    assert result.config["program"] == {"name": "ext-gain", "options": {"gain": 0.5}}
    again, config = load_artifact(result.out)
    x = build_ext_blobs().test.x
    assert torch.equal(again.predict(x), model.predict(x))
    assert config["mapping"]["table"][1]["source_labels"] == [model.source.label_names[1]]


def test_a_new_baseline_runs_under_the_protocol(tmp_path: Path) -> None:
    cfg = BaselineConfig(
        method="ext-mean",
        target="ext-blobs",
        epochs=5,
        batch_size=8,
        lr=0.5,
        out=str(tmp_path / "base"),
        progress=False,
        plots=False,
    )
    result = run_baseline(cfg)
    assert result.metrics["test_accuracy"] is not None
    again, config = load_artifact(result.out)  # its own loader, chosen by the recorded format
    assert config["format"] == "reprogram-baseline-v1" and isinstance(again, PixelMean)
    x = build_ext_blobs().test.x
    assert torch.equal(again(x).argmax(-1), result.model(x).argmax(-1))


def test_build_and_save_without_the_trainer(tmp_path: Path) -> None:
    """PEFT-like: build a reprogrammed model, train it in a loop of one's own, save, reload."""
    data = build_ext_blobs()
    model = ReprogrammedModel.build(
        "ext-cnn",
        input_shape=(1, 6, 6),
        class_names=data.class_names,
        program="ext-gain",
        mapping="ext-first",
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {
        id(p) for p in [*model.program.parameters(), *model.mapping.parameters()]
    }
    opt = torch.optim.SGD(trainable, lr=0.1)
    for _ in range(3):
        loss = F.cross_entropy(model(data.train.x), data.train.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model.save_pretrained(tmp_path / "mine")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "program.safetensors"]
    again = ReprogrammedModel.from_pretrained(out)
    assert torch.equal(again.predict(data.test.x), model.predict(data.test.x))
    assert torch.equal(again.program.gain, model.program.gain)
