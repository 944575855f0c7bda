"""The Voice2Series bound as a training diagnostic.

Voice2Series (Yang et al., ICML 2021, Theorem 1): target risk ≤ source risk
+ 2√K · W₁(reprogrammed-target logits, source logits), ``K`` target classes. The Wasserstein
term is measured here every epoch, approximated by the *sliced* Wasserstein-1 distance
(the mean over ``P`` fixed, seeded random unit directions of the 1-D distance between the
projected clouds), between:

- the source's logits ``[n, V]`` on real source-domain audio: spoken English generated with
  espeak-ng (32 short words and sentences, 16 kHz, cached in the user cache directory);
- the logits ``[m, V]`` of the reprogrammed validation series (a fixed seeded sample).

Each epoch's history row gets ``v2s_sw_distance`` and ``v2s_bound_term`` (= 2√K · distance);
``bound.png`` plots them against the validation loss. Without espeak-ng the callback records
why it was skipped and does nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..accelerator import to_model
from ..callbacks import Callback
from ..errors import ReprogramError
from ..figures import subplots
from ..sources.cache import atomic_path, cache_dir, sha256_file

if TYPE_CHECKING:
    from ..callbacks import Trainer
    from ..config import FitResult

#: The source-domain reference: short English words and sentences.
REFERENCE_TEXTS: tuple[str, ...] = (
    "yes", "no", "seven", "hello", "thank you", "good morning", "stop", "go",
    "left", "right", "up", "down", "one two three", "open the door", "what time is it",
    "the weather is nice today", "please call me later", "I like music",
    "where are you going", "turn on the light", "the cat sat on the mat",
    "see you tomorrow", "how are you", "this is a test", "red green blue",
    "four five six", "wait a moment", "let us begin", "the quick brown fox",
    "listen carefully", "speech to text", "good night",
)  # fmt: skip
VOICE = "en"
SAMPLE_RATE = 16_000


# ----------------------------------------------------------------------------- distances
def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact W₁ between uniform empirical distributions, column by column.

    Args:
        u: samples ``[n, P]``; v: samples ``[m, P]`` (``n`` and ``m`` may differ).
    Returns:
        ``[P]`` distances: ``∫₀¹ |F_u⁻¹(q) − F_v⁻¹(q)| dq`` over the merged quantile grid.
    """
    u = u.to(torch.float64).sort(0).values
    v = v.to(torch.float64).sort(0).values
    n, m = u.shape[0], v.shape[0]
    f64 = torch.float64
    cuts = torch.cat([torch.arange(1, n + 1, dtype=f64) / n, torch.arange(1, m + 1, dtype=f64) / m])
    cuts = torch.unique(cuts)  # sorted, ends at 1
    lower = torch.cat([cuts.new_zeros(1), cuts[:-1]])
    mid = (lower + cuts) / 2
    iu = (mid * n).floor().long().clamp(max=n - 1)
    iv = (mid * m).floor().long().clamp(max=m - 1)
    return ((cuts - lower)[:, None] * (u[iu] - v[iv]).abs()).sum(0)


def random_directions(dim: int, count: int, seed: int) -> torch.Tensor:
    """``count`` seeded random unit vectors, as columns ``[dim, count]``."""
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(dim, count, generator=gen)
    return d / d.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Sliced W₁ between point clouds ``a`` ``[n, d]`` and ``b`` ``[m, d]`` along ``[d, P]``."""
    dirs = directions.to(a.dtype)
    return float(wasserstein_1d(a @ dirs, b @ dirs).mean())


# ----------------------------------------------------------------------------- reference audio
def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ReprogramError(f"espeak-ng wrote {w.getsampwidth() * 8}-bit audio; expected 16.")
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
        channels = w.getnchannels()
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return audio.reshape(-1, channels).mean(1), rate


def speak(text: str, voice: str = VOICE) -> np.ndarray:
    """``text`` spoken by espeak-ng, resampled to 16 kHz: float32 ``[T]`` in ``[-1, 1]``."""
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        try:
            subprocess.run(
                ["espeak-ng", "-v", voice, "-w", str(out), text],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ReprogramError(f"espeak-ng failed to speak {text!r}: {exc}.") from None
        audio, rate = _read_wav(out)
    g = math.gcd(SAMPLE_RATE, rate)
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)


def reference_audio(
    texts: tuple[str, ...] = REFERENCE_TEXTS, voice: str = VOICE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spoken ``texts`` at 16 kHz: ``(audio [N, T_max] zero-padded, lengths [N])``.

    Generated once with espeak-ng and cached (``<cache>/v2s_reference/<key>.safetensors`` and
    ``.json`` with its SHA-256); the key hashes the texts, the voice and espeak-ng's version.
    """
    from safetensors.torch import load_file, save_file

    if not espeak_available():
        raise ReprogramError("espeak-ng is not installed (apt-get install espeak-ng).")
    version = subprocess.run(
        ["espeak-ng", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    key = hashlib.sha256(json.dumps([list(texts), voice, version]).encode()).hexdigest()[:16]
    folder = cache_dir("v2s_reference")
    weights, meta_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("sha256") == sha256_file(weights):
            state = load_file(str(weights))
            return state["audio"], state["lengths"]
    except (OSError, ValueError, KeyError):
        pass
    clips = [speak(t, voice) for t in texts]
    lengths = torch.tensor([len(c) for c in clips])
    audio = torch.zeros(len(clips), int(lengths.max()))
    for i, c in enumerate(clips):
        audio[i, : len(c)] = torch.from_numpy(c)
    for final, write in (
        (weights, lambda p: save_file({"audio": audio, "lengths": lengths}, str(p))),
        (
            meta_path,
            lambda p: p.write_text(
                json.dumps(
                    {
                        "texts": list(texts),
                        "voice": voice,
                        "espeak": version,
                        "sample_rate": SAMPLE_RATE,
                        "sha256": sha256_file(weights),
                    },
                    indent=2,
                )
            ),
        ),
    ):
        tmp = atomic_path(final)
        try:
            write(tmp)
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
    return audio, lengths


def fit_window(audio: torch.Tensor, window: int) -> torch.Tensor:
    """Clips ``[N, T]`` cut or zero-padded at the end to ``[N, window]``."""
    if audio.shape[1] >= window:
        return audio[:, :window].contiguous()
    return torch.nn.functional.pad(audio, (0, window - audio.shape[1]))


# ----------------------------------------------------------------------------- the callback
@torch.no_grad()
def _logits(model: Any, x: torch.Tensor, step: int, through_program: bool) -> torch.Tensor:
    fn = model.source_logits if through_program else model.source
    parts = [fn(to_model(model, x[i : i + step])).float().cpu() for i in range(0, len(x), step)]
    return torch.cat(parts)


class V2SBoundCallback(Callback):
    """Per epoch: sliced W₁ between reprogrammed validation logits and real-speech logits.

    Args:
        projections: number of random directions ``P`` (fixed and seeded: cheap, repeatable).
        sample: at most this many validation series (a fixed seeded subset).
        seed: seeds the directions and the subset.
    State: the distances so far, or why the diagnostic was skipped.
    """

    name = "v2s_bound"
    diagnostic = True

    def __init__(self, projections: int = 128, sample: int = 64, seed: int = 0) -> None:
        self.projections = projections
        self.sample = sample
        self.seed = seed
        self.values: list[dict[str, float]] = []
        self.skipped: str | None = None
        self._reference: torch.Tensor | None = None
        self._directions: torch.Tensor | None = None
        self._val: torch.Tensor | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        model = trainer.model
        source = model.source
        window = int(getattr(source, "window", source.input_size[-1]))
        if not espeak_available():
            self.skipped = "espeak-ng is not installed, so there is no reference speech"
        if self.skipped:
            if trainer.is_main and trainer.config.progress:
                from tqdm.auto import tqdm

                tqdm.write(f"note: V2S bound diagnostic skipped ({self.skipped}).")
            return
        audio, _ = reference_audio()
        model.eval()
        step = trainer.config.eval_batch_size
        self._reference = _logits(model, fit_window(audio, window), step, through_program=False)
        self._directions = random_directions(source.num_classes, self.projections, self.seed)
        val = trainer.splits.val
        gen = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(len(val), generator=gen)[: self.sample].sort().values
        self._val = val.x[pick]

    def measure(self, trainer: Trainer) -> float:
        """Sliced W₁ between the current reprogrammed validation logits and the reference."""
        assert self._reference is not None and self._directions is not None
        assert self._val is not None  # set with _reference in on_fit_start
        model = trainer.model
        was_training = model.training
        model.eval()
        step = trainer.config.eval_batch_size
        target = _logits(model, self._val, step, through_program=True)
        model.train(was_training)
        return sliced_wasserstein(target, self._reference, self._directions)

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        if self.skipped or self._reference is None:
            return
        distance = self.measure(trainer)
        k = trainer.splits.num_classes
        record["v2s_sw_distance"] = distance
        record["v2s_bound_term"] = 2.0 * math.sqrt(k) * distance
        self.values.append({"epoch": epoch, "sw_distance": distance})

    def state_dict(self) -> dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        return {
            "projections": self.projections,
            "sample": self.sample,
            "seed": self.seed,
            "reference": f"{len(REFERENCE_TEXTS)} espeak-ng utterances ({VOICE}), 16 kHz",
            "values": list(self.values),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = list(state.get("values", []))


def save_bound_png(result: FitResult, path: Path) -> bool:
    """``bound.png``: the sliced W₁ term and the bound term per epoch beside validation loss.

    Returns False (and writes nothing) when the history has no bound values.
    """
    rows = [r for r in result.metrics.get("history", []) if "v2s_sw_distance" in r]
    if not rows:
        return False
    epochs = [r["epoch"] for r in rows]
    fig, ax = subplots(figsize=(6.4, 3.8))
    losses = [float("nan") if r["val_loss"] is None else r["val_loss"] for r in rows]
    ax.plot(epochs, losses, "o-", color="tab:blue", label="validation loss")  # NaN: not validated
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss", color="tab:blue")
    right = ax.twinx()
    right.plot(
        epochs,
        [r["v2s_bound_term"] for r in rows],
        "s--",
        color="tab:red",
        label="2√K · sliced W₁",
    )
    right.set_ylabel("2√K · sliced W₁ (target vs speech logits)", color="tab:red")
    k = len(result.config["target"]["class_names"])
    ax.set_title(
        f"Voice2Series bound term (K={k}) against validation loss\n"
        f"{result.config['source']['name']} → {result.config['target']['name']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


__all__ = [
    "REFERENCE_TEXTS",
    "V2SBoundCallback",
    "random_directions",
    "reference_audio",
    "save_bound_png",
    "sliced_wasserstein",
    "speak",
    "wasserstein_1d",
]
