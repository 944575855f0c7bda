"""``lora`` and ``bitfit``: parameter-efficient fine-tuning under the baseline protocol.

Tiny source (``tiny-random-cnn``: conv 3→8 · BN · conv 8→16 · BN · linear 16→100) and the
8×8 ``digits`` target; two epochs each. Each method is trained once per module (fixture) and
the tests read that run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from reprogram import load_artifact
from reprogram.baselines import BASELINES, BaselineConfig, run_baseline
from reprogram.baselines.base import BuildContext
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.evaluate import loss_and_accuracy, score
from reprogram.sources import Source, build_source
from reprogram.sources.module import from_module

pytest.importorskip("peft")

METHODS = ["lora", "bitfit"]
CLASSIFIER = ("8.weight", "8.bias")  # the tiny source's classifier, replaced by the new head
HEAD = 16 * 10 + 10  # the new head: 16 features → 10 digits
#: LoRA rank r on the tiny source: conv 3→8 (3×3) gets A 3·9·r and B r·8, conv 8→16 gets
#: A 8·9·r and B r·16.
LORA_PER_RANK = 3 * 9 + 8 + 8 * 9 + 16
BITFIT = 2 * 8 + 2 * 16  # the two batch norms' weight and bias (the convs have no bias)


def config(tmp_path: Path, method: str, name: str | None = None, **kw: object) -> BaselineConfig:
    base = dict(
        method=method,
        source="tiny-random-cnn",
        target="digits",
        shots=20,
        epochs=2,
        seed=1,
        lr=0.02,
        out=str(tmp_path / (name or method)),
        progress=False,
    )
    base.update(kw)
    return BaselineConfig(**base)  # type: ignore[arg-type]


def build(method: str, source: Source, options: dict[str, Any] | None = None) -> nn.Module:
    """The untrained model of ``method`` for 10 classes of 8×8 grey images."""
    baseline = BASELINES.get(method).builder(BASELINES.build_config(method, options))
    return baseline.build(BuildContext(source, (1, 8, 8), 10))


def rescore(out: Path) -> float:
    """Test accuracy of the artifact, loaded afresh (as ``reprogram eval``)."""
    from reprogram.cli import _load_eval_splits

    model, cfg = load_artifact(out)
    splits, batch = _load_eval_splits(cfg)
    splits.test.unseal()
    test = splits.test.open()
    return loss_and_accuracy(score(model, test.x, test.y, batch))[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each method trained once on the tiny source; the source's tensors before training."""
    source = build_source("tiny-random-cnn")
    before = {k: v.clone() for k, v in source.module.state_dict().items()}
    tmp = tmp_path_factory.mktemp("peft")
    runs = {m: run_baseline(config(tmp, m), source=source) for m in METHODS}
    return {"source": source, "before": before, "runs": runs}


@pytest.mark.parametrize("method", METHODS)
def test_artifact_is_safetensors_and_json_and_eval_reproduces_it(
    trained: dict[str, Any], method: str
) -> None:
    result = trained["runs"][method]
    out, m = result.out, result.metrics
    assert {p.name for p in out.iterdir()} == {"config.json", "program.safetensors", "metrics.json"}
    assert m["epochs"] == 2 and m["splits"] == {"train": 160, "val": 40, "test": 539}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "reprogram-baseline-v1" and cfg["baseline"]["method"] == method
    saved = load_file(str(out / "program.safetensors"))
    assert set(saved) == set(result.model.adapter_state_dict())
    assert sum(v.numel() for v in saved.values()) == m["trainable_parameters"]
    assert rescore(out) == m["test_accuracy"]


def test_lora_artifact_reloads_in_a_fresh_process(trained: dict[str, Any]) -> None:
    result = trained["runs"]["lora"]
    assert json.loads((result.out / "config.json").read_text())["baseline"]["options"] == {
        "rank": 8,
        "alpha": None,
        "dropout": 0.0,
        "layers": "all",
    }
    saved = load_file(str(result.out / "program.safetensors"))
    assert sorted(saved) == [
        "body.0.lora_A.default.weight",
        "body.0.lora_B.default.weight",
        "body.3.lora_A.default.weight",
        "body.3.lora_B.default.weight",
        "head.bias",
        "head.weight",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "reprogram.cli", "eval", str(result.out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "yes, exactly" in proc.stdout


def test_lora_trains_only_its_updates_and_the_head(trained: dict[str, Any]) -> None:
    before, source = trained["before"], trained["source"]
    model = trained["runs"]["lora"].model
    for key, value in source.module.state_dict().items():  # the source itself is untouched
        assert torch.equal(before[key], value), key
    body = model.body.state_dict()
    frozen = {k.replace(".base_layer", ""): v for k, v in body.items() if ".lora_" not in k}
    assert set(frozen) == set(before) - set(CLASSIFIER)  # weights and BN statistics
    for key, value in frozen.items():
        assert torch.equal(value, before[key]), key
    for key in ("0.lora_B.default.weight", "3.lora_B.default.weight"):  # zero at the start
        assert body[key].abs().sum() > 0, key
    assert model.head.weight.abs().sum() > 0
    trained_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_" in n or n.startswith("head.") for n in trained_names)


def test_bitfit_trains_only_biases_norms_and_the_head(trained: dict[str, Any]) -> None:
    before = trained["before"]
    model = trained["runs"]["bitfit"].model
    body = model.body.state_dict()
    assert set(body) == set(before) - set(CLASSIFIER)
    moved = {k for k, v in body.items() if not torch.equal(v, before[k])}
    assert moved == {"1.weight", "1.bias", "4.weight", "4.bias"}  # BN statistics stay
    trained_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained_names == {f"body.{k}" for k in moved} | {"head.weight", "head.bias"}


def test_trainable_counts_are_below_finetune() -> None:
    source = build_source("tiny-random-cnn")
    classifier = sum(p.numel() for p in source.module[8].parameters())
    finetune = build("finetune", source).trainable_parameters()
    assert finetune == source.num_parameters - classifier + HEAD == 1586
    lora = build("lora", source).trainable_parameters()
    assert lora == 8 * LORA_PER_RANK + HEAD == 1154
    assert build("lora", source, {"rank": "4"}).trainable_parameters() == 4 * LORA_PER_RANK + HEAD
    bitfit = build("bitfit", source).trainable_parameters()
    assert bitfit == BITFIT + HEAD == 218
    assert bitfit < lora < finetune


def test_lora_adapts_dense_called_layers_only() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Conv2d(3, 8, 3, padding=1)
            self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
            self.mix = nn.Linear(8, 8)
            self.spare = nn.Linear(8, 8)  # registered, never called
            self.fc = nn.Linear(8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.dilated(self.depthwise(self.dense(x))).mean((2, 3))
            return self.fc(self.mix(h))

    source = from_module(Net().eval(), input_size=(3, 16, 16), name="net")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PEFT warns when it adapts a grouped convolution
        model: Any = build("lora", source, {"dropout": "0.1"})
    assert model.adapted == ["dense", "mix"]
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    model.train()  # the body stays in eval mode; LoRA's dropout follows the trainer
    assert not model.body.training and model.head.training
    assert model.body.dense.lora_dropout.training
    model.eval()
    assert not model.body.dense.lora_dropout.training
    only_convs = build("lora", source, {"layers": "conv"})
    assert only_convs.adapted == ["dense"]  # type: ignore[comparison-overlap]


def test_sources_without_adaptable_layers_are_clear_errors() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 5),
    )
    source = from_module(net.eval(), input_size=(3, 16, 16), name="depthwise-only")
    with pytest.raises(ReprogramError, match="'depthwise-only' has no layer LoRA can adapt"):
        build("lora", source)
    with pytest.raises(ReprogramError, match="has no biases and no normalisation layers"):
        build("bitfit", source)
    tiny = build_source("tiny-random-cnn")  # its only linear layer is the classifier
    with pytest.raises(ReprogramError, match=r"layers=linear: a nn\.Linear that its forward"):
        build("lora", tiny, {"layers": "linear"})


def test_missing_peft_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ReprogramError, match=r"pip install 'reprogram\[vision\]'"):
        run_baseline(config(tmp_path, "lora"))
    assert not (tmp_path / "lora").exists()  # refused before --out is touched


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--method", "lora", "--method-opt", "rank=0"], "rank must be a positive integer"),
        (["--method", "lora", "--method-opt", "rank=eight"], "rank='eight' of baseline 'lora'"),
        (["--method", "lora", "--method-opt", "alpha=-2"], "alpha must be positive"),
        (["--method", "lora", "--method-opt", "dropout=1"], "dropout must be in [0, 1)"),
        (["--method", "lora", "--method-opt", "layers=attn"], "layers must be one of all, conv"),
        (["--method", "lora", "--method-opt", "depth=2"], "has no option depth"),
        (["--method", "bitfit", "--method-opt", "rank=8"], "takes no options"),
    ],
)
def test_bad_options_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    common = ["--source", "tiny-random-cnn", "--target", "digits", "--quiet"]
    code = main(["baseline", *argv, *common, "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
