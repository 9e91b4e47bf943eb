"""MFCC embedder: the mean over time of a clip's MFCC matrix (``mfcc_<N>``, published: ``mfcc_104``).

The conventions are librosa's defaults (through :mod:`sonic.cream.spectra.core`), so a vector equals
``librosa.feature.mfcc(y=y, sr=22050, n_mfcc=N, n_fft=2048, hop_length=512, n_mels=128).mean(axis=1)``
to float32 precision, computed here with numpy and scipy only:

1. frames of ``n_fft`` samples every ``hop_length``, centred (``n_fft // 2`` zeros padded at
   both ends), periodic Hann window; power spectrogram ``|rfft|**2``;
2. ``n_mels`` triangular filters on the Slaney mel scale (0 Hz .. Nyquist), each scaled to unit
   area (Slaney normalisation);
3. decibels ``10 * log10(max(power, 1e-10))`` (reference power 1.0), floored at 80 dB below the
   clip's loudest value;
4. orthonormal DCT-II over the mel axis, first ``N`` coefficients; mean over frames.

As the DCT is linear, step 4 averages the log-mel frames first and transforms the mean once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import numpy as np

from sonic.cream.spectra import AMIN_POWER, checked_waveform, mel_power, power_to_db
from sonic.errors import SonicError, UnknownNameError

#: Reference power for 0 dB.
REF_POWER = 1.0
#: Dynamic range kept below each clip's loudest mel value, in dB.
TOP_DB = 80.0

_NAME = re.compile(r"mfcc_(\d+)")


@dataclass(frozen=True)
class MFCCConfig:
    """Parameters of :class:`MFCCEmbedder`; the defaults are the published ``mfcc_104``."""

    n_mfcc: int = 104
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    sample_rate: int = 22050

    def __post_init__(self) -> None:
        for field_name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SonicError(f"MFCC {field_name} must be a positive integer, got {value!r}")
        if self.n_mfcc > self.n_mels:
            raise SonicError(
                f"MFCC with {self.n_mfcc} coefficients needs at least as many mel bands, "
                f"but n_mels is {self.n_mels}; use mfcc_1 .. mfcc_{self.n_mels}"
            )


class MFCCEmbedder:
    """``mfcc_<N>``: mean over time of ``N`` MFCCs; see the module docstring for the recipe.

    ``embed`` takes mono float32 waveforms (samples,) at :attr:`sample_rate` Hz and returns
    float32 (n, N). Cheap and stateless, so the folder pipeline may run it in worker processes.
    """

    modality: ClassVar[str] = "audio"
    runs_in_workers: ClassVar[bool] = True

    def __init__(self, config: MFCCConfig = MFCCConfig()) -> None:
        self.config = config
        self.name = f"mfcc_{config.n_mfcc}"
        self.dim = config.n_mfcc
        self.sample_rate = config.sample_rate
        self._dct = dct_ii_matrix(config.n_mfcc, config.n_mels)  # (n_mfcc, n_mels) float64

    @classmethod
    def from_name(cls, name: str) -> MFCCEmbedder:
        """``"mfcc_104"`` -> the embedder with exactly 104 coefficients (1 .. 128 allowed)."""
        match = _NAME.fullmatch(name)
        n_max = MFCCConfig.n_mels
        if match is None or not 1 <= int(match.group(1)) <= n_max:
            raise UnknownNameError(
                f"unknown embedder {name!r}; known MFCC names are mfcc_1 .. mfcc_{n_max} "
                f"(the number of coefficients; the published one is mfcc_104)"
            )
        return cls(MFCCConfig(n_mfcc=int(match.group(1))))

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Mean MFCC vectors (n, n_mfcc) float32 of mono waveforms (samples,) at ``sample_rate``."""
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        for row, waveform in enumerate(batch):
            log_mel = self._log_mel(checked_waveform(waveform, f"waveform {row} of the batch"))
            out[row] = self._dct @ log_mel.mean(axis=1, dtype=np.float64)
        return out

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """Log-mel spectrogram in dB, floored at ``TOP_DB`` below its maximum: (n_mels, n_frames) float32."""
        return self._log_mel(checked_waveform(waveform, "waveform"))

    def _log_mel(self, waveform: np.ndarray) -> np.ndarray:
        config = self.config
        power = mel_power(
            waveform, config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels
        )
        return power_to_db(power, ref=REF_POWER, amin=AMIN_POWER, top_db=TOP_DB)

    def describe(self) -> dict[str, Any]:
        """Manifest entry: model, parameters, sample rate and pooling."""
        return {
            "model": self.name,
            "parameters": {
                **asdict(self.config),
                "window": "hann (periodic)",
                "centered": True,
                "pad_mode": "constant (zeros)",
                "power": 2.0,
                "mel_scale": "slaney",
                "mel_norm": "slaney (unit area)",
                "fmin_hz": 0.0,
                "fmax_hz": self.sample_rate / 2,
                "amin": AMIN_POWER,
                "ref": REF_POWER,
                "top_db": TOP_DB,
                "dct": "type II, orthonormal",
            },
            "sample_rate": self.sample_rate,
            "pooling": "mean over time",
        }

    def __repr__(self) -> str:
        return f"MFCCEmbedder({self.config})"


def from_name(name: str, **options: Any) -> MFCCEmbedder:
    """The registry's factory: ``mfcc_<N>``; options are fields of :class:`MFCCConfig` other than ``n_mfcc``."""
    embedder = MFCCEmbedder.from_name(name)
    if not options:
        return embedder
    known = [field for field in MFCCConfig.__dataclass_fields__ if field != "n_mfcc"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SonicError(f"unknown option {unknown[0]!r} for embedder {name!r}; known: {', '.join(known)}")
    return MFCCEmbedder(replace(embedder.config, **options))


def dct_ii_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II, first ``n_out`` rows: (n_out, n_in) float64, ``x -> matrix @ x``."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    matrix = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    matrix[0] /= np.sqrt(2.0)
    return matrix
