"""A fitted random forest as a torch module: trees as tensors, saved as safetensors.

scikit-learn's ``RandomForestClassifier`` is fitted on fixed features, then each tree's
arrays (split feature, threshold, children, leaf class distribution) are copied into padded
buffers ``[T, N]``, so the artifact holds no pickle and ``eval`` scores the forest through
this module, the same arithmetic as scikit-learn's ``predict_proba`` (mean of the trees'
leaf distributions; features cast to float32 and compared in float64 with the thresholds,
as scikit-learn does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class TreeEnsemble(nn.Module):
    """Trees ``[T, N]`` (``N`` the largest node count); ``forward`` gives log mean leaf
    probabilities ``[B, K]`` for features ``[B, D]`` (a regression forest: the mean of the
    trees' leaf values ``[B, 1]``).

    Leaves have ``left == -1``; a row walks down until every tree has reached a leaf.
    """

    feature: torch.Tensor  # [T, N] int64 split feature (0 at leaves)
    threshold: torch.Tensor  # [T, N] float64: go left when x[feature] <= threshold
    left: torch.Tensor  # [T, N] int64 child (-1 at leaves)
    right: torch.Tensor  # [T, N] int64 child
    value: torch.Tensor  # [T, N, K] float32 class distribution at each node

    def __init__(
        self, trees: int, nodes: int, num_classes: int, depth: int, regression: bool = False
    ) -> None:
        super().__init__()
        self.depth = int(depth)
        self.regression = bool(regression)
        self.register_buffer("feature", torch.zeros(trees, nodes, dtype=torch.long))
        self.register_buffer("threshold", torch.zeros(trees, nodes, dtype=torch.float64))
        self.register_buffer("left", torch.full((trees, nodes), -1, dtype=torch.long))
        self.register_buffer("right", torch.full((trees, nodes), -1, dtype=torch.long))
        self.register_buffer("value", torch.zeros(trees, nodes, num_classes))

    @classmethod
    def shape_of(cls, forest: Any) -> tuple[int, int, int, int]:
        """``(trees, nodes, classes, depth)`` of a fitted scikit-learn forest."""
        trees = forest.estimators_
        return (
            len(trees),
            max(t.tree_.node_count for t in trees),
            int(getattr(forest, "n_classes_", 1)),  # a regressor has one output
            max(int(t.tree_.max_depth) for t in trees),
        )

    @torch.no_grad()
    def load_forest(self, forest: Any) -> None:
        """Copy a fitted scikit-learn forest's trees into the buffers."""
        for i, estimator in enumerate(forest.estimators_):
            tree = estimator.tree_
            n = tree.node_count
            self.feature[i, :n] = torch.from_numpy(np.maximum(tree.feature, 0).astype(np.int64))
            self.threshold[i, :n] = torch.from_numpy(tree.threshold.astype(np.float64))
            self.left[i, :n] = torch.from_numpy(tree.children_left.astype(np.int64))
            self.right[i, :n] = torch.from_numpy(tree.children_right.astype(np.int64))
            dist = tree.value[:, 0, :].astype(np.float64)
            if not self.regression:  # class counts (or fractions) → distributions
                dist = dist / np.maximum(dist.sum(1, keepdims=True), 1e-12)
            self.value[i, :n] = torch.from_numpy(dist.astype(np.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Log class probabilities ``[B, K]`` of features ``[B, D]`` (float32)."""
        x = features.to(torch.float32).to(torch.float64)
        b, t = x.shape[0], self.feature.shape[0]
        trees = torch.arange(t, device=x.device).expand(b, t)
        node = torch.zeros(b, t, dtype=torch.long, device=x.device)
        for _ in range(self.depth + 1):
            left = self.left[trees, node]
            if bool((left < 0).all()):
                break
            value = x.gather(1, self.feature[trees, node])
            step = torch.where(value <= self.threshold[trees, node], left, self.right[trees, node])
            node = torch.where(left < 0, node, step)
        mean = self.value[trees, node].mean(1)  # [B, K]: probabilities, or [B, 1] values
        return mean if self.regression else mean.clamp_min(1e-12).log()
