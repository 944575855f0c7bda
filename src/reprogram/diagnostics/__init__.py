"""Diagnostics computed during training (theory made measurable), and their pictures.

- :mod:`.v2s_bound`: the Voice2Series bound's Wasserstein term between reprogrammed target
  logits and the source's logits on real source-domain audio, every epoch.
- :mod:`.waveform_plot`: ``program.png`` for waveform programs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..callbacks import Callback
    from ..sources import Source


def default_diagnostics(source: Source, enabled: bool = True) -> list[Callback]:
    """The diagnostic callbacks a fit on ``source`` runs by default (``[]`` when disabled).

    Audio sources (those with a ``sample_rate``) get the Voice2Series bound; it reports
    itself skipped, with the reason, when espeak-ng is missing.
    """
    if not enabled or getattr(source, "sample_rate", None) is None:
        return []
    from .v2s_bound import V2SBoundCallback

    return [V2SBoundCallback()]


__all__ = ["default_diagnostics"]
