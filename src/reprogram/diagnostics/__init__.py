"""Diagnostics computed during training (theory made measurable), and their pictures.

- :mod:`.v2s_bound`: the Voice2Series bound's Wasserstein term between reprogrammed target
  logits and the source's logits on real source-domain audio, every epoch (audio sources
  declare it in :meth:`~reprogram.sources.base.Source.diagnostics`).
- :mod:`.waveform_plot`: ``program.png`` for waveform programs.
- :mod:`.token_plot`: ``program.png`` for token programs (what each symbol is made of).
"""
