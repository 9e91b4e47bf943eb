"""The demo's musical styles: clearly different timbre, tempo, key, register and rhythm.

Each :class:`Style` is a recipe that :mod:`sonic.demo.synth` renders into audio. Tracks of
one style share the recipe and differ in key, tempo (a few percent), melody and mix.
"""

from __future__ import annotations

from dataclasses import dataclass

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PENTATONIC = (0, 3, 5, 7, 10)


@dataclass(frozen=True)
class Style:
    """A synthesis recipe.

    ``harmonics`` are the relative amplitudes of partials 1, 2, 3... of the lead voice;
    ``kick``/``snare``/``hat`` are 16-step patterns (1 = hit) per bar of 4 beats.
    """

    name: str
    genres: tuple[str, ...]
    bpm: float
    scale: tuple[int, ...]
    mode: int  # 1 major, 0 minor (Spotify's convention)
    octave: int  # MIDI octave of the lead voice (4 = middle C's octave)
    harmonics: tuple[float, ...]
    note_steps: int  # lead note length in 16th steps
    decay_seconds: float  # lead note amplitude decay time constant
    vibrato_hz: float
    pad_level: float
    bass_level: float
    noise_level: float  # broadband texture (distortion, vinyl, wind)
    drive: float  # soft-clipping amount, 0 = clean
    kick: str
    snare: str
    hat: str
    languages: tuple[str, ...]
    danceability: float
    energy: float
    valence: float


STYLES: tuple[Style, ...] = (
    Style("ambient", ("ambient", "new age"), 64, MAJOR, 1, 5, (1.0, 0.2, 0.05), 16, 2.5, 0.2,
          0.8, 0.0, 0.03, 0.0, "0" * 16, "0" * 16, "0" * 16, ("en", "fr"), 0.2, 0.15, 0.45),
    Style("techno", ("techno", "electronic"), 128, MINOR, 0, 3, (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3), 1, 0.08, 0.0,
          0.1, 0.9, 0.02, 0.3, "1000100010001000", "0000000000000000", "0010001000100010", ("de", "en"), 0.85, 0.85, 0.4),
    Style("rock", ("rock", "alternative rock"), 118, MAJOR, 1, 4, (1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15), 2, 0.4, 0.0,
          0.3, 0.6, 0.05, 0.8, "1000000010100000", "0000100000001000", "1010101010101010", ("en", "es"), 0.5, 0.8, 0.55),
    Style("strings", ("classical", "orchestral"), 84, MINOR, 0, 5, (1.0, 0.5, 0.33, 0.25, 0.2, 0.16), 8, 1.5, 5.5,
          0.5, 0.3, 0.0, 0.0, "0" * 16, "0" * 16, "0" * 16, ("it", "de"), 0.25, 0.3, 0.3),
    Style("hiphop", ("hip hop", "rap"), 90, MINOR, 0, 3, (1.0, 0.1), 4, 0.6, 0.0,
          0.2, 1.0, 0.06, 0.1, "1000001010000000", "0000100000001000", "1010101010101010", ("en", "pt"), 0.8, 0.6, 0.5),
    Style("jazz", ("jazz", "bossa nova"), 140, MAJOR, 1, 4, (1.0, 0.0, 0.3, 0.0, 0.1), 3, 0.9, 0.0,
          0.35, 0.5, 0.01, 0.0, "1000000000000000", "0000000000000010", "1001101010011010", ("pt", "en"), 0.55, 0.4, 0.7),
    Style("folk", ("folk", "singer-songwriter"), 100, MAJOR, 1, 5, (1.0, 0.6, 0.3, 0.15, 0.08), 2, 0.25, 0.0,
          0.0, 0.2, 0.0, 0.0, "0" * 16, "0" * 16, "0" * 16, ("es", "fr", "en"), 0.45, 0.35, 0.75),
    Style("metal", ("metal", "heavy metal"), 176, PENTATONIC, 0, 3, (1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7), 1, 0.15, 0.0,
          0.4, 0.8, 0.25, 3.0, "1010101010101010", "0000100000001000", "1111111111111111", ("en", "de"), 0.35, 0.97, 0.2),
)
