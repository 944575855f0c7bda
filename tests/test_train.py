"""The training loop: frozen source, validation-only selection, checkpoints, resume, DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import Crash, CrashAt
from helpers import tiny_config as config
from safetensors.torch import load_file
from torch import nn

from reprogram import fit, load_artifact
from reprogram.callbacks import Callback
from reprogram.checkpoint import CHECKPOINT_NAME, load_checkpoint
from reprogram.config import changed_settings
from reprogram.data import load_target
from reprogram.errors import ReprogramError, SealedSplitError
from reprogram.sources import build_source
from reprogram.sources.module import from_module


def test_source_weights_and_statistics_are_bit_identical_after_training(tmp_path: Path) -> None:
    source = build_source("tiny-random-cnn")
    before = {k: v.clone() for k, v in source.module.state_dict().items()}
    result = fit(config(tmp_path, lr=0.1), source=source)
    after = result.model.source.module.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    # and the program did train
    assert torch.count_nonzero(result.model.program.delta) > 0


def test_selection_uses_validation_and_metrics_are_complete(tmp_path: Path) -> None:
    m = fit(config(tmp_path, epochs=4)).metrics
    history = m["history"]
    best = max(history, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    assert m["best_epoch"] == best["epoch"] and m["val_accuracy"] == best["val_accuracy"]
    for key in ("test_accuracy", "trainable_parameters", "source_parameters", "train_seconds"):
        assert key in m
    assert m["epochs"] == 4 and 0.0 <= m["test_accuracy"] <= 1.0


class PeekAtTest(Callback):
    name = "peek"

    def on_epoch_end(self, trainer, epoch, record) -> None:  # type: ignore[no-untyped-def]
        trainer.splits.test.open()


def test_reading_the_test_split_during_training_raises(tmp_path: Path) -> None:
    with pytest.raises(SealedSplitError, match="before model selection finished"):
        fit(config(tmp_path), callbacks=[PeekAtTest()])


@pytest.mark.parametrize("mapping", ["ilm", "linear"])
def test_resume_continues_exactly(tmp_path: Path, mapping: str) -> None:
    straight = fit(config(tmp_path, "straight", mapping=mapping, epochs=4))
    with pytest.raises(Crash):
        fit(config(tmp_path, "resumed", mapping=mapping, epochs=4), callbacks=[CrashAt(3)])
    ckpt = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert ckpt["epoch"] == 2
    assert not list((tmp_path / "resumed").glob(".*.tmp"))
    resumed = fit(config(tmp_path, "resumed", mapping=mapping, epochs=4, resume=True))
    a = load_file(str(tmp_path / "straight" / "program.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "program.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in straight.metrics["history"]]
    assert strip == [
        {k: v for k, v in r.items() if k != "seconds"} for r in resumed.metrics["history"]
    ]
    assert straight.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]
    assert straight.metrics["callbacks"] == resumed.metrics["callbacks"]
    assert not (tmp_path / "resumed" / CHECKPOINT_NAME).exists()


def test_resume_refuses_changed_settings(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        fit(config(tmp_path, epochs=3), callbacks=[CrashAt(2)])
    with pytest.raises(ReprogramError, match="different settings \\(seed: 3 → 4\\)"):
        fit(config(tmp_path, epochs=3, resume=True, seed=4))
    # --lr also sets the optimizer's lr option: the refusal names it once, with both values
    with pytest.raises(ReprogramError, match=r"settings \(lr: unset → 0\.5\)\. Resume"):
        fit(config(tmp_path, epochs=3, resume=True, lr=0.5))


def test_changed_settings_names_option_keys() -> None:
    theirs = {"seed": 0, "program_options": {"length": 4, "init": "vocab"}, "lr": None}
    ours = {"seed": 0, "program_options": {"length": 8, "init": "vocab"}, "lr": None}
    assert changed_settings(theirs, ours) == "program_options.length: 4 → 8"


def test_ilm_remaps_before_every_epoch(tmp_path: Path) -> None:
    m = fit(config(tmp_path, mapping="ilm", epochs=3)).metrics
    assert [c["epoch"] for c in m["callbacks"]["remap"]["changes"]] == [1, 2, 3]
    table = json.loads((tmp_path / "run" / "config.json").read_text())["mapping"]["table"]
    assert len(table) == 10 and all(len(row["source_labels"]) == 1 for row in table)


def test_flm_maps_once(tmp_path: Path) -> None:
    m = fit(config(tmp_path, mapping="flm", epochs=2)).metrics
    assert [c["epoch"] for c in m["callbacks"]["remap"]["changes"]] == [1]


def test_any_torch_module_as_source_and_reload(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 12),
    )
    source = from_module(net, input_size=(3, 16, 16), mean=(0.5,) * 3, std=(0.5,) * 3)
    result = fit(config(tmp_path, epochs=1, source="module"), source=source)
    model, cfg = load_artifact(result.out, source=source)
    assert cfg["source"]["name"].startswith("module:")
    data = load_target("digits")
    x = data.test.x[:20]
    assert torch.equal(model(x), result.model(x))
    other = from_module(
        nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 12),
        ),
        input_size=(3, 16, 16),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    with pytest.raises(ReprogramError, match="exact model it was trained for"):
        load_artifact(result.out, source=other)


def test_two_cpu_processes_data_parallel(tmp_path: Path) -> None:
    result = fit(config(tmp_path, epochs=2, devices=2))
    assert result.metrics["devices"] == 2
    model, _ = load_artifact(result.out)
    assert torch.count_nonzero(model.program.delta) > 0
    # the frozen weights in the artifact-rebuilt model are the untouched originals
    assert model.source.fingerprint() == build_source("tiny-random-cnn").fingerprint()


def test_checkpoint_write_is_atomic_and_corruption_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram import checkpoint as ck
    from reprogram.errors import ArtifactError

    path = tmp_path / CHECKPOINT_NAME
    ck.save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def dies_halfway(obj: object, f: Path) -> None:
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    assert ck.load_checkpoint(path)["epoch"] == 1  # the previous checkpoint survives whole
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ArtifactError, match="corrupt or truncated"):
        ck.load_checkpoint(path)


@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopping_ends_patience_epochs_after_the_best(tmp_path: Path, patience: int) -> None:
    m = fit(config(tmp_path, epochs=8, patience=patience, lr=0.3)).metrics
    assert m["epochs"] == min(8, m["best_epoch"] + patience)
    vals = [(r["val_accuracy"], -r["val_loss"]) for r in m["history"]]
    assert vals[m["best_epoch"] - 1] == max(vals)


def test_probe_init_starts_from_a_fitted_mapping_and_is_a_candidate(tmp_path: Path) -> None:
    # a learning rate this large wrecks the warm start, so selection must fall back to epoch 0
    result = fit(
        config(tmp_path, program="full", mapping_options={"init": "probe"}, lr=5.0, epochs=2)
    )
    m = result.metrics
    start = m["history"][0]
    assert start["epoch"] == 0 and m["epochs"] == 2
    assert start["val_accuracy"] > 0.5  # a fitted logistic regression, not a zero mapping
    assert m["best_epoch"] == 0 and m["val_accuracy"] == start["val_accuracy"]
    assert m["callbacks"]["probe_init"]["C"] in [
        c["C"] for c in m["callbacks"]["probe_init"]["candidates"]
    ]


def test_probe_init_resumes_without_refitting(tmp_path: Path) -> None:
    kw = dict(program="full", mapping_options={"init": "probe"}, lr=0.001, epochs=3)
    straight = fit(config(tmp_path, "straight", **kw))
    with pytest.raises(Crash):
        fit(config(tmp_path, "resumed", **kw), callbacks=[CrashAt(2)])
    resumed = fit(config(tmp_path, "resumed", resume=True, **kw))
    assert straight.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]
    assert [r["val_loss"] for r in straight.metrics["history"]] == [
        r["val_loss"] for r in resumed.metrics["history"]
    ]


def test_epochs_0_scores_a_fixed_table_zero_shot_and_refuses_an_untrained_layer(
    tmp_path: Path,
) -> None:
    result = fit(config(tmp_path, "zs", mapping="random", epochs=0))
    metrics = result.metrics
    assert metrics["best_epoch"] == 0 and [h["epoch"] for h in metrics["history"]] == [0]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    trained = fit(config(tmp_path, "trained", mapping="random", epochs=1)).metrics
    assert [h["epoch"] for h in trained["history"]] == [1]  # training: no epoch-0 candidate
    with pytest.raises(ReprogramError, match="--epochs 0 trains nothing"):
        fit(config(tmp_path, "linear", mapping="linear", epochs=0))


def test_a_long_epoch_logs_plain_progress_lines_when_stderr_is_no_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under nohup or a batch job the bar is off; a plain line says how far the epoch is."""
    from reprogram import train

    monkeypatch.setattr(train._PlainProgress, "every", 0.0)
    fit(config(tmp_path, epochs=1, shots=4, progress=True, batch_size=8))  # 32 training rows
    err = capsys.readouterr().err
    assert "epoch 1/1  step 1/4 (25%)  loss " in err and "min left" in err
    assert "step 4/4" not in err  # the epoch's own line closes it
    fit(config(tmp_path, "quiet", epochs=1, shots=4, progress=False, batch_size=8))
    assert "step 1/4" not in capsys.readouterr().err
