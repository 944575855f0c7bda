"""Peers a bioinformatician or chemist would pick for sequence targets, under the same protocol.

Fixed features of the symbols, then a classifier fitted on the training split:

- ``composition-logreg`` / ``composition-forest``: amino-acid (symbol) composition and
  dipeptide (symbol-pair) composition, ``V + V²`` frequencies, with logistic regression
  (``C`` chosen on validation) or a random forest.
- ``length``: a random forest on the sequence length alone (shows how much of a task length
  explains: ``amp``'s negatives were drawn with lengths 10-50).
- ``morgan-forest``: RDKit Morgan fingerprints (radius 2, 2,048 bits) with a random forest.
- ``descriptors-forest``: RDKit's 2-D descriptors with a random forest.

Forests use fixed settings (300 trees, scikit-learn's defaults otherwise, seeded by the
run): nothing is chosen, so validation is only reported; the test split is scored once.
The fitted trees are saved as tensors (:mod:`reprogram.baselines.forest`), never pickled.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..adapter import Adapted
from ..config import FitResult
from ..data.sequences import alphabet_of, decode
from ..errors import DataError, ReprogramError
from ..evaluate import score
from ..tasks import task_of
from ..transforms import featurize
from . import BASELINES
from .base import Baseline, BaselineRun, BuildContext, fitted_once, test_once
from .forest import TreeEnsemble
from .logistic import LogisticBaseline, LogisticOptions
from .models import FeatureClassifier

# ------------------------------------------------------------------ featurizers


def _symbols(ctx: BuildContext, method: str) -> list[str]:
    if len(ctx.input_shape) != 1 or not ctx.vocabulary:
        raise ReprogramError(
            f"baseline {method!r} reads sequences of symbols; this target's inputs have shape "
            f"{list(ctx.input_shape)}. Use it with a sequence target (amp, b3db, csv:PATH)."
        )
    return list(ctx.vocabulary)


class CompositionFeatures(nn.Module):
    """Symbol and symbol-pair frequencies: ids ``[B, L]`` → ``[B, V + V²]`` float32."""

    def __init__(self, vocabulary: list[str]) -> None:
        super().__init__()
        self.size = len(vocabulary)
        self.dim = self.size + self.size**2

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        v = self.size
        n = (ids != 0).sum(1, keepdim=True).clamp_min(1).to(torch.float32)
        single = torch.zeros(ids.shape[0], v + 1).scatter_add_(
            1, ids, torch.ones_like(ids, dtype=torch.float32)
        )[:, 1:]
        a, b = ids[:, :-1], ids[:, 1:]
        valid = ((a != 0) & (b != 0)).to(torch.float32)
        pair = ((a - 1).clamp_min(0) * v + (b - 1).clamp_min(0)).long()
        pairs = torch.zeros(ids.shape[0], v * v).scatter_add_(1, pair, valid)
        return torch.cat([single / n, pairs / (n - 1).clamp_min(1)], dim=1)


class LengthFeatures(nn.Module):
    """The length alone: ids ``[B, L]`` → ``[B, 1]`` float32."""

    dim = 1

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids != 0).sum(1, keepdim=True).to(torch.float32)


class MoleculeFeatures(nn.Module):
    """RDKit features of SMILES spelled by ids ``[B, L]``: Morgan bits or 2-D descriptors."""

    def __init__(self, vocabulary: list[str], kind: str) -> None:
        super().__init__()
        try:
            from rdkit import Chem, RDLogger
            from rdkit.Chem import Descriptors, rdFingerprintGenerator
        except ImportError:
            raise ReprogramError(f"{kind} features need RDKit: pip install rdkit") from None
        RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
        self.vocabulary = vocabulary
        self.kind = kind
        self._chem = Chem
        if kind == "morgan":
            self._generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
            self.dim = 2048
        else:
            self._descriptors = [fn for _name, fn in Descriptors.descList]
            self.dim = len(self._descriptors)

    def _row(self, smiles: str) -> np.ndarray:
        mol = self._chem.MolFromSmiles(smiles)
        if mol is None:
            raise DataError(
                f"{smiles[:60]!r} is not a valid SMILES string (RDKit cannot parse it); fix or "
                "remove it. A csv: target checks every row when it loads, naming the row, "
                "with #alphabet=smiles (csv:PATH#alphabet=smiles)."
            )
        if self.kind == "morgan":
            return np.asarray(self._generator.GetFingerprintAsNumPy(mol), dtype=np.float32)
        values = []
        for fn in self._descriptors:
            try:
                values.append(float(fn(mol)))
            except (ValueError, ZeroDivisionError, RuntimeError, OverflowError):
                values.append(0.0)  # a descriptor undefined for this molecule
        row = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(row, -1e9, 1e9).astype(np.float32)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = [self._row(s) for s in decode(ids.cpu(), self.vocabulary)]
        return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, self.dim)


def sequence_featurizer(kind: str, ctx: BuildContext, method: str) -> nn.Module:
    """The featurizer ``kind`` (composition, length, morgan, descriptors) for ``ctx``."""
    symbols = _symbols(ctx, method)
    if kind == "composition":
        return CompositionFeatures(symbols)
    if kind == "length":
        return LengthFeatures()
    if alphabet_of(symbols) == "protein":
        raise DataError(
            f"{method} reads molecules written as SMILES; this target's sequences are amino "
            "acids. For peptides use composition-forest (or composition-logreg, which "
            "classifies only); for a CSV of "
            "molecules whose SMILES use only letters, add #alphabet=smiles "
            "(csv:PATH#alphabet=smiles)."
        )
    return MoleculeFeatures(symbols, kind)


# ------------------------------------------------------------------ logistic regression


class CompositionLogReg(LogisticBaseline):
    needs_source = False

    def build(self, ctx: BuildContext) -> nn.Module:
        if ctx.task != "classification":
            raise ReprogramError(
                "composition-logreg classifies; for a regression target use composition-forest."
            )
        features = sequence_featurizer("composition", ctx, "composition-logreg")
        return FeatureClassifier(features, ctx.num_classes, None)


@BASELINES.register(
    "composition-logreg",
    config=LogisticOptions,
    help="sequences: symbol + pair composition, logistic regression (C chosen on val)",
)
def build_composition_logreg(options: LogisticOptions) -> CompositionLogReg:
    return CompositionLogReg(options)


# ------------------------------------------------------------------ random forests


@dataclass
class ForestOptions:
    """Options of the random-forest peers."""

    trees: int = field(default=300, metadata={"help": "number of trees"})
    shape: str = field(
        default="",
        metadata={"help": "the fitted forest's size (trees,nodes,classes,depth; set by the run)"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.trees, bool) or not 1 <= self.trees <= 5000:
            raise ValueError(f"trees must be 1 … 5000, got {self.trees!r}")


class ForestClassifier(Adapted):
    """``forest(featurizer(x))``: log class probabilities ``[B, K]`` of sequences ``[B, L]``
    (a regression forest: predicted values ``[B, 1]``)."""

    def __init__(self, featurizer: nn.Module, forest: TreeEnsemble) -> None:
        super().__init__()
        self.featurizer = featurizer
        self.forest = forest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forest(self.featurizer(x))

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(("forest." + k, v) for k, v in self.forest.state_dict().items())

    def trainable_parameters(self) -> int:
        """Fitted numbers: a threshold per split node and a class distribution per leaf."""
        splits = int((self.forest.left >= 0).sum())
        leaves = int(((self.forest.left < 0) & (self.forest.value.sum(-1) > 0)).sum())
        return splits + leaves * int(self.forest.value.shape[-1])

    def source_parameters(self) -> int | None:
        return None


class ForestBaseline(Baseline):
    """A random forest on fixed sequence features (``kind``)."""

    needs_source = False
    chooses = False  # fixed settings: k-fold or refit selection fits once, on every example
    kind = "composition"

    def build(self, ctx: BuildContext) -> nn.Module:
        features = sequence_featurizer(self.kind, ctx, self.method)
        shape = [int(v) for v in self.options.shape.split(",")] if self.options.shape else []
        trees, nodes, classes, depth = shape if len(shape) == 4 else (0, 0, ctx.num_classes, 0)
        regression = ctx.task == "regression"
        forest = TreeEnsemble(trees, nodes, classes, depth, regression=regression)
        return ForestClassifier(features, forest)

    @property
    def method(self) -> str:
        return f"{self.kind}-forest" if self.kind != "length" else "length"

    def train(self, run: BaselineRun) -> FitResult:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cfg, splits, model = run.config, run.splits, run.model
        assert isinstance(model, ForestClassifier)
        show = cfg.progress and sys.stderr.isatty()
        start = time.perf_counter()
        batch = cfg.eval_batch_size
        dim = int(model.featurizer.dim)  # type: ignore[arg-type]
        f_train = featurize(
            model.featurizer, splits.train.x, batch, dim, "features" if show else None
        )
        regression = splits.task == "regression"
        kind = RandomForestRegressor if regression else RandomForestClassifier
        forest = kind(n_estimators=self.options.trees, random_state=cfg.seed, n_jobs=-1)
        forest.fit(f_train.numpy(), splits.train.y.numpy())
        if not regression and len(forest.classes_) != splits.num_classes:
            raise DataError(
                f"baseline {cfg.method!r}: the training split holds {len(forest.classes_)} of the "
                f"{splits.num_classes} classes; a forest needs examples of every class."
            )
        shape = TreeEnsemble.shape_of(forest)
        model.forest = TreeEnsemble(*shape, regression=regression)
        model.forest.load_forest(forest)
        train_seconds = time.perf_counter() - start
        task = task_of(splits.task)
        val = task.summary(score(model, splits.val.x, splits.val.y, batch, task=task))
        artifact = dict(run.artifact_config)
        options = {**artifact["baseline"]["options"], "shape": ",".join(str(v) for v in shape)}
        artifact["baseline"] = {**artifact["baseline"], "options": options}
        return fitted_once(
            run,
            model,
            val=val,
            test=test_once(run, model, show),  # nothing is chosen on validation: test once
            seconds=train_seconds,
            selection=f"fixed settings ({self.options.trees} trees); nothing chosen; test once",
            artifact=artifact,
        )


def _register_forest(kind: str, name: str, about: str) -> None:
    cls = type(f"{kind.title()}Forest", (ForestBaseline,), {"kind": kind})

    @BASELINES.register(name, config=ForestOptions, help=about)
    def build(options: ForestOptions) -> ForestBaseline:
        return cls(options)


_register_forest("composition", "composition-forest", "sequences: composition + random forest")
_register_forest("length", "length", "sequences: the length alone + random forest")
_register_forest("morgan", "morgan-forest", "molecules: Morgan fingerprints (r=2, 2,048 bits) + RF")
_register_forest("descriptors", "descriptors-forest", "molecules: RDKit 2-D descriptors + RF")
