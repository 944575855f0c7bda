"""``hydra`` and ``multirocket-hydra``: the strongest cheap convolution classifiers as peers.

Hydra (Dempster, Schmidt & Webb, DMKD 2023) convolves each series, and its first
difference, with groups of ``k`` random kernels at every dilation ``2^0 .. 2^E``; at each
time point the kernels of a group compete: the best-matching kernel gains its response
("soft" count of maxima) and the worst-matching one gains 1 ("hard" count of minima). The
counts, square-rooted and standardised by a sparse scaler (zeros stay zero), feed a ridge
classifier. ``multirocket-hydra`` puts aeon's MultiRocket features (the series and its
difference, four pooling operators per kernel) beside Hydra's, as aeon's
``MultiRocketHydraClassifier`` does; in the 2023 bake-off that pairing is the most accurate
convolution method for its cost.

Both fit on the training split only, choose the head's penalty on validation, and score the
test split once (the protocol of :mod:`reprogram.baselines.minirocket`). The Hydra kernels
are drawn from a generator seeded with the run's seed (the global torch RNG is untouched).

Artifact: the kernels, the scaler's statistics and MultiRocket's fitted dilations and
biases are tensors in ``program.safetensors``; loading rebuilds the transform from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..transforms.hydra import HydraFeatureOptions, MultiRocketHydraFeatureOptions
from . import BASELINES
from .minirocket import KernelTransformBaseline, RidgeHeadOptions


@dataclass
class HydraOptions(HydraFeatureOptions, RidgeHeadOptions):
    """Options of the ``hydra`` baseline: the transform's and the head's."""


@dataclass
class MultiRocketHydraOptions(MultiRocketHydraFeatureOptions, RidgeHeadOptions):
    """Options of the ``multirocket-hydra`` baseline: the transform's and the head's."""


class HydraBaseline(KernelTransformBaseline):
    name = "hydra"
    title = "Hydra"


class MultiRocketHydraBaseline(KernelTransformBaseline):
    name = "multirocket-hydra"
    title = "MultiRocket + Hydra"


@BASELINES.register(
    "hydra",
    config=HydraOptions,
    help="time series: Hydra's competing random kernels + ridge (penalty chosen on val)",
)
def build_hydra(options: HydraOptions) -> HydraBaseline:
    return HydraBaseline(options)


@BASELINES.register(
    "multirocket-hydra",
    config=MultiRocketHydraOptions,
    help="time series: aeon's MultiRocket + Hydra features, one ridge head (as aeon's MR-Hydra)",
)
def build_multirocket_hydra(options: MultiRocketHydraOptions) -> MultiRocketHydraBaseline:
    return MultiRocketHydraBaseline(options)
