"""Peptide classification sets packaged in modlamp (read as files; the package is not imported).

``amp`` (antimicrobial peptides from APD3 against random UniProt sequences), ``amp-tm``
(antimicrobial against transmembrane peptides) and ``acp`` (anticancer against
transmembrane). Each is deduplicated (repeated rows dropped, sequences carrying both labels
removed), and a fixed stratified 20% is held out as the test split with its own seed 0,
whatever the run seed. ``amp``'s UniProt negatives were drawn with lengths 10-50 only, so
length alone separates part of it: compare with the ``length`` baseline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError
from ..packages import package_file
from . import TARGETS
from .base import TargetData
from .sequences import AMINO_ACIDS, deduplicate, sequence_target
from .splits import holdout_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0

#: name → (file in modlamp/data, help)
SETS = {
    "amp": ("AMPvsUniProt.csv", "antimicrobial peptides (APD3) vs UniProt sequences, length 10-50"),
    "amp-tm": ("AMPvsTMset.csv", "antimicrobial vs transmembrane peptides"),
    "acp": ("ACP_CancPPD_vs_TM.csv", "anticancer peptides (CancerPPD) vs transmembrane peptides"),
}


def modlamp_file(filename: str) -> Path:
    """Path of ``filename`` in modlamp's packaged data folder (without importing modlamp)."""
    path = package_file("modlamp", f"data/{filename}")
    if path is None:
        raise DataError(
            f"the peptide sets come from the modlamp package: pip install modlamp==4.3.3 "
            f"(it was not found, or lacks data/{filename})."
        )
    return path


def read_modlamp(filename: str) -> tuple[list[str], list[int], list[str]]:
    """``(sequences, labels, class_names)`` of a modlamp CSV (header ``N,1,NAME0,NAME1``)."""
    lines = modlamp_file(filename).read_text().splitlines()
    header = lines[0].split(",")
    class_names = [header[2].strip(), header[3].strip()]
    sequences, labels = [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        text, label = line.rsplit(",", 1)
        sequences.append(text.strip())
        labels.append(int(label))
    return sequences, labels, class_names


def peptides(name: str) -> TargetData:
    """Load peptide set ``name``: token ids ``[N, L]`` over the 20 amino acids."""
    filename, about = SETS[name]
    raw, labels, class_names = read_modlamp(filename)
    sequences, labels, removed = deduplicate(raw, labels)
    y = torch.tensor(labels)
    _keep, held = holdout_split(y, TEST_FRACTION, SPLIT_SEED)
    info = {
        "source": f"modlamp 4.3.3, data/{filename}: {about}",
        "rows": f"{len(raw)} in the file; {removed['duplicates']} repeated rows and "
        f"{removed['conflicting']} sequences with both labels removed: {len(sequences)} kept",
        "split": f"no official split; fixed stratified {TEST_FRACTION:.0%} test split "
        f"(seed {SPLIT_SEED}, independent of the run seed)",
    }
    if name == "amp":
        info["caveat"] = (
            "the UniProt negatives were filtered to lengths 10-50, so length alone separates "
            "much of this set: compare with `reprogram baseline --method length`"
        )
    return sequence_target(name, sequences, labels, class_names, list(AMINO_ACIDS), held, info)


def _register(name: str) -> None:
    @TARGETS.register(name, help=f"peptides: {SETS[name][1]} (modlamp)", tags=("sequence",))
    def load() -> TargetData:
        return peptides(name)


for _name in SETS:
    _register(_name)
