"""Baselines under the same protocol as reprogramming: what users would otherwise pick.

One registry, one module per method: ``linear-probe`` and ``pixels-logreg`` (logistic
regression on frozen features or raw pixels, regularisation chosen on validation),
``finetune`` (every source weight trained), ``scratch`` (a small model from random
initialisation) and, for time series, ``minirocket``, ``hydra`` and ``multirocket-hydra``
(random-kernel transforms with a ridge head). Artifacts share the layout of ``fit`` runs
(``config.json``, ``program.safetensors`` with the trained tensors, ``metrics.json``), so
``reprogram eval`` and ``predict`` work on them too.
"""

from __future__ import annotations

from .base import BASELINES, Baseline, BaselineConfig, load_baseline, run_baseline

__all__ = ["BASELINES", "Baseline", "BaselineConfig", "load_baseline", "run_baseline"]
