"""Draw the four spectral pictures of a synthetic musical example into docs/ (mel, chroma, fft, tempogram).

The example is 16 s at 22050 Hz, generated with numpy: the chords C, Am, F, G (one 2-s bar each,
twice) as harmonic tones, a melody on the chord notes an octave up, a kick drum on every beat at
120 BPM and a quiet hi-hat on the off-beats. Run from anywhere:

    python docs/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonic.cream.spectra.figures import save_figure
from sonic.cream.spectra.pictures import chromagram, fft_spectrum, mel_spectrogram, tempogram

SAMPLE_RATE = 22050
BPM = 120.0
SECONDS_PER_BEAT = 60.0 / BPM
#: One chord per bar of 4 beats, as MIDI notes.
CHORDS = {"C": (48, 60, 64, 67), "Am": (45, 57, 60, 64), "F": (41, 57, 60, 65), "G": (43, 55, 59, 62)}
PROGRESSION = ("C", "Am", "F", "G", "C", "Am", "F", "G")
TITLE = "a synthetic example (C-Am-F-G, 120 BPM)"


def midi_hz(note: float) -> float:
    """Frequency (Hz) of MIDI note ``note`` (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69) / 12)


def harmonic_note(note: int, seconds: float, *, amplitude: float, decay_per_s: float = 1.5) -> np.ndarray:
    """A plucked-string-like note (samples,): 5 harmonics falling as 1/k, with an exponential decay."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * k * midi_hz(note) * t) / k for k in range(1, 6))
    attack = np.minimum(1.0, t / 0.01)
    return amplitude * tone * attack * np.exp(-decay_per_s * t)


def kick(seconds: float = 0.25) -> np.ndarray:
    """A kick drum (samples,): a sine swept from 150 to 50 Hz, decaying fast."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    frequency = 50.0 + 100.0 * np.exp(-t / 0.03)
    return 0.8 * np.sin(2 * np.pi * np.cumsum(frequency) / SAMPLE_RATE) * np.exp(-t / 0.08)


def hihat(rng: np.random.Generator, seconds: float = 0.05) -> np.ndarray:
    """A closed hi-hat (samples,): differenced white noise (mostly highs), decaying fast."""
    n = round(seconds * SAMPLE_RATE)
    return 0.15 * np.diff(rng.standard_normal(n + 1)) * np.exp(-np.arange(n) / (0.01 * SAMPLE_RATE))


def example() -> np.ndarray:
    """The example (samples,) float32, peak 0.9."""
    rng = np.random.default_rng(0)
    bar = 4 * SECONDS_PER_BEAT
    out = np.zeros(round(len(PROGRESSION) * bar * SAMPLE_RATE) + SAMPLE_RATE)

    def add(sound: np.ndarray, at_seconds: float) -> None:
        start = round(at_seconds * SAMPLE_RATE)
        out[start : start + len(sound)] += sound[: len(out) - start]

    for index, name in enumerate(PROGRESSION):
        notes, start = CHORDS[name], index * bar
        for note in notes:
            add(harmonic_note(note, bar, amplitude=0.12, decay_per_s=0.8), start)
        for beat, note in enumerate((notes[1] + 12, notes[2] + 12, notes[3] + 12, notes[2] + 12)):
            add(harmonic_note(note, SECONDS_PER_BEAT, amplitude=0.15, decay_per_s=3.0), start + beat * SECONDS_PER_BEAT)
        for beat in range(4):
            add(kick(), start + beat * SECONDS_PER_BEAT)
            add(hihat(rng), start + (beat + 0.5) * SECONDS_PER_BEAT)
    out = out[: round(len(PROGRESSION) * bar * SAMPLE_RATE)]
    return (0.9 * out / np.abs(out).max()).astype(np.float32)


def main() -> None:
    folder = Path(__file__).resolve().parent
    waveform = example()
    pictures = {
        "mel": mel_spectrogram(waveform, SAMPLE_RATE),
        "chroma": chromagram(waveform, SAMPLE_RATE),
        "fft": fft_spectrum(waveform, SAMPLE_RATE),
        "tempogram": tempogram(waveform, SAMPLE_RATE),
    }
    for kind, picture in pictures.items():
        path = save_figure(picture, folder / f"{kind}.png", title=TITLE)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    print(f"estimated tempo: {pictures['tempogram'].tempo_bpm():.1f} BPM (true: {BPM:g})")


if __name__ == "__main__":
    main()
