"""Peers for sequence targets: composition, length and RDKit features; forests as tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram import load_artifact
from reprogram.baselines.base import run_baseline
from reprogram.baselines.forest import TreeEnsemble
from reprogram.baselines.sequence import CompositionFeatures
from reprogram.config import BaselineConfig
from reprogram.data import load_target
from reprogram.data.sequences import encode
from reprogram.errors import DataError, ReprogramError


def test_composition_counts_symbols_and_pairs() -> None:
    features = CompositionFeatures(list("AC"))
    out = features(encode(["AAC", "C"], list("AC"), "t"))
    torch.testing.assert_close(out[0], torch.tensor([2 / 3, 1 / 3, 1 / 2, 1 / 2, 0.0, 0.0]))
    torch.testing.assert_close(out[1], torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]))


def test_tree_ensemble_reproduces_scikit_learn() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + (x[:, 2] > 1).astype(int)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    module = TreeEnsemble(*TreeEnsemble.shape_of(forest))
    module.load_forest(forest)
    probe = rng.normal(size=(300, 5)).astype(np.float32)
    ours = module(torch.from_numpy(probe)).exp().numpy()
    np.testing.assert_allclose(ours, forest.predict_proba(probe), atol=1e-6)


def _toy(tmp_path: Path) -> str:
    rng = np.random.default_rng(1)
    rows = ["sequence,label"]
    for i in range(60):
        pos = i % 2 == 0
        letters = "KRHA" if pos else "DEWA"
        n = int(rng.integers(5, 11)) + (7 if pos else 0)  # lengths 5-10 and 12-17
        rows.append("".join(rng.choice(list(letters), n)) + f",{'pos' if pos else 'neg'}")
    path = tmp_path / "toy.csv"
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}"


@pytest.mark.parametrize(
    "method", ["composition-logreg", "composition-forest", "length", "scratch"]
)
def test_sequence_peers_train_report_auc_and_reload(tmp_path: Path, method: str) -> None:
    target = _toy(tmp_path)
    config = BaselineConfig(
        method=method,
        target=target,
        method_options={"trees": "25"} if method in ("composition-forest", "length") else {},
        epochs=15,
        out=str(tmp_path / method),
        progress=False,
        plots=False,
    )
    result = run_baseline(config)
    metrics = result.metrics
    assert 0.5 <= metrics["test_roc_auc"] <= 1.0
    assert metrics["test_accuracy"] >= 0.75  # composition and length both separate the toy
    loaded, _ = load_artifact(tmp_path / method)
    test = load_target(target).test
    torch.testing.assert_close(loaded(test.x), result.model(test.x))


@pytest.mark.parametrize("select", ["kfold:3", "refit"])
def test_forest_under_kfold_fits_once_on_every_shot(tmp_path: Path, select: str) -> None:
    """A forest has fixed settings: k-fold or refit selection runs no folds and fits the
    forest on all the shots (holdout's validation rows included), the same as holdout's
    forest otherwise."""
    target = _toy(tmp_path)
    common = dict(
        method="composition-forest",
        target=target,
        method_options={"trees": "25"},
        shots=10,
        progress=False,
        plots=False,
    )
    held = run_baseline(BaselineConfig(**common, out=str(tmp_path / "held"))).metrics
    result = run_baseline(BaselineConfig(**common, select=select, out=str(tmp_path / "k")))
    m = result.metrics
    assert held["splits"]["train"] + held["splits"]["val"] == 20
    assert m["splits"]["train"] == 20 and m["splits"]["val"] == 0
    assert m["kfold"]["folds"] == 0 and "epoch" not in m["kfold"]["choice"]
    assert not (tmp_path / "k" / "folds").exists()
    assert m["val_accuracy"] is None and "fixed settings" in m["selection"]
    from reprogram.cli import summary

    assert "(fixed settings, nothing to choose" in summary(result)  # no "untrained program"
    # held out, the forest only scores its validation rows: said so, with the way to use them
    held_run = run_baseline(BaselineConfig(**common, out=str(tmp_path / "held2")))
    assert "these rows were only scored; --select refit" in summary(held_run)
    loaded, _ = load_artifact(tmp_path / "k")
    test = load_target(target).test
    assert 0.5 <= m["test_roc_auc"] <= 1.0
    torch.testing.assert_close(loaded(test.x), result.model(test.x))


def test_molecule_peers_read_smiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rdkit")
    alcohols = ["CO", "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "CCC(C)O", "OCC(O)CO"]
    rings = ["c1ccccc1", "Cc1ccccc1", "c1ccncc1", "C1CCCCC1", "c1ccc2ccccc2c1", "C1CCOC1"]
    rings += ["Oc1ccccc1", "CCc1ccccc1"]
    rows = ["sequence,label"] + [f"{s},open" for s in alcohols] + [f"{s},ring" for s in rings]
    path = tmp_path / "mol.csv"
    path.write_text("\n".join(rows) + "\n")
    for method in ("morgan-forest", "descriptors-forest"):
        result = run_baseline(
            BaselineConfig(
                method=method,
                target=f"csv:{path}#alphabet=smiles",
                method_options={"trees": "15"},
                out=str(tmp_path / method),
                progress=False,
                plots=False,
            )
        )
        assert result.metrics["test_accuracy"] is not None
    # predict checks new molecules with RDKit and names the file's row
    from reprogram.cli import main

    new = tmp_path / "new.smi"
    new.write_text("CCO ethanol\nC1CC( broken\n")
    assert main(["predict", str(tmp_path / "morgan-forest"), str(new)]) == 2
    assert "new.smi, row 2: 'C1CC(' is not a valid SMILES" in capsys.readouterr().err


def test_molecule_peers_refuse_peptides_with_what_to_use(tmp_path: Path) -> None:
    target = _toy(tmp_path)
    with pytest.raises(DataError, match=r"morgan-forest reads molecules written as SMILES.*"
                       r"composition-forest"):
        run_baseline(BaselineConfig(method="morgan-forest", target=target,
                                    out=str(tmp_path / "m"), progress=False, plots=False))


def test_sequence_peers_refuse_images(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="reads sequences of symbols"):
        run_baseline(
            BaselineConfig(
                method="composition-forest",
                target="digits",
                out=str(tmp_path / "x"),
                progress=False,
                plots=False,
            )
        )


def test_finetune_trains_a_copy_of_the_language_model(tmp_path: Path) -> None:
    from reprogram.sources import build_source

    target = _toy(tmp_path)
    source = build_source("tiny-random-lm")
    before = {k: v.clone() for k, v in source.module.state_dict().items()}
    result = run_baseline(
        BaselineConfig(
            method="finetune",
            source="tiny-random-lm",
            target=target,
            epochs=3,
            out=str(tmp_path / "ft"),
            progress=False,
            plots=False,
        ),
        source=source,
    )
    metrics = result.metrics
    assert metrics["trainable_parameters"] == source.num_parameters + 16 * 2 + 2
    assert all(torch.equal(v, source.module.state_dict()[k]) for k, v in before.items())
    model = result.model
    embedding = model.lm.module.get_input_embeddings().weight
    assert not torch.equal(embedding, before["embeddings.word_embeddings.weight"])  # trained
    loaded, _ = load_artifact(tmp_path / "ft", source=source)
    test = load_target(target).test
    torch.testing.assert_close(loaded(test.x), model(test.x))
    # a causal LM ties its output layer to its input embeddings: stored once, reloaded tied
    causal = run_baseline(BaselineConfig(method="finetune", source="tiny-random-causal-lm",
                                         target=target, epochs=1, out=str(tmp_path / "tied"),
                                         progress=False, plots=False))
    reloaded, _ = load_artifact(tmp_path / "tied")
    torch.testing.assert_close(reloaded(test.x), causal.model(test.x))
    lm = reloaded.lm.module
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
    with pytest.raises(ReprogramError, match="trains on a source's image features"):
        run_baseline(
            BaselineConfig(
                method="linear-probe",
                source="tiny-random-lm",
                target=target,
                out=str(tmp_path / "lp"),
                progress=False,
                plots=False,
            )
        )
